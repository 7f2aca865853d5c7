//! Several instances sharing one Redis (or a Redis Cluster): one state, atomic
//! decisions, outages answered with 503 and recovered from without a restart.

use phone_verify::testing::{RedisCluster, RedisServer};
use serde_json::json;

use crate::helpers::{Reply, TestApp, api, spawn_app_with};

const A: &str = "+12015550123";
const KEY: &str = "redis-test-key-0123456789";
const SECRET: &str = "0123456789abcdef0123456789abcdef-shared";

async fn instance(url: &str, cluster: bool, extra: &[(&str, &str)]) -> TestApp {
    let mut env = vec![
        ("PHONE_VERIFY__STORE__BACKEND", "redis"),
        ("PHONE_VERIFY__STORE__REDIS_URL", url),
        (
            "PHONE_VERIFY__STORE__REDIS_CLUSTER",
            if cluster { "true" } else { "false" },
        ),
        ("PHONE_VERIFY__SERVER__SECRET", SECRET),
        ("PHONE_VERIFY__API__KEYS", KEY),
    ];
    env.extend_from_slice(extra);
    spawn_app_with(&env).await
}

fn wrong(code: &str) -> &'static str {
    if code == "000000" { "111111" } else { "000000" }
}

#[tokio::test]
async fn a_verification_started_on_one_instance_is_checked_on_another() {
    let Some(redis) = RedisServer::start_or_skip().await else {
        return;
    };
    let (one, two) = (
        instance(&redis.url(), false, &[]).await,
        instance(&redis.url(), false, &[]).await,
    );
    let started = api(&one, KEY).start(A).await;
    assert_eq!(started.status, 201, "{:?}", started.json);
    let code = one.code_for(A).await;
    let id = started.json["id"].as_str().unwrap();
    assert_eq!(
        api(&two, KEY)
            .get(&format!("/api/v1/verifications/{id}"))
            .await
            .json["status"],
        "pending"
    );
    let checked = api(&two, KEY).check(A, &code).await;
    assert_eq!(
        (checked.status, checked.json["valid"].as_bool()),
        (200, Some(true)),
        "{:?}",
        checked.json
    );
    assert_eq!(
        api(&one, KEY).check(A, &code).await.status,
        404,
        "used once, everywhere"
    );
}

#[tokio::test]
async fn a_second_browser_on_another_instance_gets_its_own_verification() {
    let Some(redis) = RedisServer::start_or_skip().await else {
        return;
    };
    let extra = [("PHONE_VERIFY__VERIFICATION__RESEND_COOLDOWN_SECS", "0")];
    let (one, two) = (
        instance(&redis.url(), false, &extra).await,
        instance(&redis.url(), false, &extra).await,
    );
    crate::security::a_second_browser_cannot_ride_on_the_first_ones_verification(&one, &two).await;
}

#[tokio::test]
async fn a_browser_can_move_between_instances_mid_flow() {
    let Some(redis) = RedisServer::start_or_skip().await else {
        return;
    };
    let (one, two) = (
        instance(&redis.url(), false, &[]).await,
        instance(&redis.url(), false, &[]).await,
    );
    let browser = one.browser();
    assert_eq!(
        browser.request_code(A, "sms").await.location(),
        Some("/verify")
    );
    let code = one.code_for(A).await;
    let elsewhere = browser.at(&two.address);
    assert_eq!(
        elsewhere.submit_code(&code).await.location(),
        Some("/success")
    );
    assert_eq!(browser.get("/success").await.status, 200);
}

#[tokio::test]
async fn wrong_codes_on_both_instances_count_toward_one_limit() {
    let Some(redis) = RedisServer::start_or_skip().await else {
        return;
    };
    let extra = [("PHONE_VERIFY__VERIFICATION__MAX_CHECK_ATTEMPTS", "3")];
    let (one, two) = (
        instance(&redis.url(), false, &extra).await,
        instance(&redis.url(), false, &extra).await,
    );
    api(&one, KEY).start(A).await;
    let code = one.code_for(A).await;
    assert_eq!(
        api(&one, KEY).check(A, wrong(&code)).await.json["attempts_remaining"],
        2
    );
    assert_eq!(
        api(&two, KEY).check(A, wrong(&code)).await.json["attempts_remaining"],
        1
    );
    assert_eq!(
        api(&one, KEY).check(A, wrong(&code)).await.json["status"],
        "max_attempts_reached"
    );
    let after = api(&two, KEY).check(A, &code).await;
    assert_eq!(
        (after.status, after.json["code"].as_str()),
        (429, Some("max_attempts_reached"))
    );
}

#[tokio::test]
async fn a_send_limit_hit_on_one_instance_holds_on_the_other() {
    let Some(redis) = RedisServer::start_or_skip().await else {
        return;
    };
    let (one, two) = (
        instance(&redis.url(), false, &[]).await,
        instance(&redis.url(), false, &[]).await,
    );
    assert_eq!(api(&one, KEY).start(A).await.status, 201);
    let refused = api(&two, KEY).start(A).await;
    assert_eq!(refused.status, 429);
    assert!(refused.header("retry-after").is_some());
    assert!(
        two.messages().is_empty(),
        "nothing sent by the second instance"
    );
}

#[tokio::test]
async fn a_pending_verification_survives_restarting_an_instance() {
    let Some(redis) = RedisServer::start_or_skip().await else {
        return;
    };
    let first = instance(&redis.url(), false, &[]).await;
    api(&first, KEY).start(A).await;
    let code = first.code_for(A).await;
    drop(first);
    let restarted = instance(&redis.url(), false, &[]).await;
    let checked = api(&restarted, KEY).check(A, &code).await;
    assert_eq!(checked.json["valid"], true, "{:?}", checked.json);
}

#[tokio::test]
async fn parallel_checks_spread_over_two_instances_stay_atomic() {
    let Some(redis) = RedisServer::start_or_skip().await else {
        return;
    };
    let extra = [("PHONE_VERIFY__VERIFICATION__RESEND_COOLDOWN_SECS", "0")];
    let (one, two) = (
        instance(&redis.url(), false, &extra).await,
        instance(&redis.url(), false, &extra).await,
    );
    let clients = [api(&one, KEY), api(&two, KEY)];

    api(&one, KEY).start(A).await;
    let code = one.code_for(A).await;
    let right: Vec<_> = (0..16).map(|i| clients[i % 2].check(A, &code)).collect();
    let approvals = futures_util::future::join_all(right)
        .await
        .iter()
        .filter(|r| r.json["valid"] == true)
        .count();
    assert_eq!(
        approvals, 1,
        "exactly one of 16 parallel right codes succeeds"
    );

    let other = "+12015550124";
    api(&two, KEY).start(other).await;
    let code = two.code_for(other).await;
    let guesses: Vec<_> = (0..50)
        .map(|i| clients[i % 2].check(other, wrong(&code)))
        .collect();
    let replies = futures_util::future::join_all(guesses).await;
    let evaluated = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!(evaluated, 5, "never more than max_check_attempts evaluated");
    assert!(replies.iter().all(|r| r.status == 200 || r.status == 429));
}

#[tokio::test]
async fn a_redis_outage_answers_503_and_service_resumes_when_it_returns() {
    let Some(mut redis) = RedisServer::start_or_skip().await else {
        return;
    };
    let app = instance(&redis.url(), false, &[]).await;
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(app.url("/readyz")).send().await.unwrap().status(),
        200
    );

    redis.stop();
    let started = std::time::Instant::now();
    let reply = api(&app, KEY).start(A).await;
    assert_eq!(
        (reply.status, reply.json["code"].as_str()),
        (503, Some("unavailable")),
        "{:?}",
        reply.json
    );
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("application/problem+json")
    );
    assert_eq!(
        http.get(app.url("/readyz")).send().await.unwrap().status(),
        503
    );
    let page = app.browser().request_code(A, "sms").await;
    assert_eq!(page.status, 503);
    assert!(
        page.body.contains("Temporarily unavailable"),
        "{}",
        page.body
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "no request hangs"
    );
    assert_eq!(
        http.get(app.url("/healthz")).send().await.unwrap().status(),
        200,
        "the process is still up"
    );
    assert!(app.messages().is_empty());

    redis.start().await;
    let mut ready = false;
    for _ in 0..50 {
        if http.get(app.url("/readyz")).send().await.unwrap().status() == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ready, "ready again without a restart");
    assert_eq!(api(&app, KEY).start(A).await.status, 201);
    let metrics = http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let errors: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("phone_verify_store_errors_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(errors >= 2, "{metrics}");
}

#[tokio::test]
async fn a_hung_redis_cannot_hang_requests() {
    let Some(redis) = RedisServer::start_or_skip().await else {
        return;
    };
    let app = instance(&redis.url(), false, &[]).await;
    assert_eq!(api(&app, KEY).start(A).await.status, 201);
    redis.freeze(true);
    let started = std::time::Instant::now();
    let reply = api(&app, KEY).check(A, "123456").await;
    let waited = started.elapsed();
    redis.freeze(false);
    assert_eq!(reply.status, 503, "{:?}", reply.json);
    assert!(
        waited < std::time::Duration::from_secs(5),
        "answered in {waited:?}"
    );
}

#[tokio::test]
async fn the_whole_flow_runs_on_a_redis_cluster() {
    let Some(cluster) = RedisCluster::start_or_skip().await else {
        return;
    };
    let url = cluster.url();
    let (one, two) = (
        instance(&url, true, &[]).await,
        instance(&url, true, &[]).await,
    );
    // Pages on one instance, the code checked on the other.
    let browser = one.browser();
    assert_eq!(
        browser.request_code(A, "sms").await.location(),
        Some("/verify")
    );
    let code = one.code_for(A).await;
    assert_eq!(
        browser.at(&two.address).submit_code(&code).await.location(),
        Some("/success")
    );
    // The API, with idempotency and limits, across numbers that land on different nodes.
    for n in 0..6 {
        let to = format!("+1201555{:04}", 200 + n);
        let request = api(&two, KEY)
            .client
            .post(two.url("/api/v1/verifications"))
            .bearer_auth(KEY)
            .header("idempotency-key", format!("k{n}"))
            .json(&json!({"to": to}))
            .send()
            .await
            .unwrap();
        assert_eq!(Reply::read(request).await.status, 201);
        let code = two.code_for(&to).await;
        assert_eq!(
            api(&one, KEY).check(&to, wrong(&code)).await.json["valid"],
            false
        );
        assert_eq!(api(&one, KEY).check(&to, &code).await.json["valid"], true);
    }
    // Without the fraud guard, a start's only step is the number's, which stores the
    // code in the same script: its keys share the number's slot on every node.
    let unguarded = instance(
        &url,
        true,
        &[
            ("PHONE_VERIFY__FRAUD__ENABLED", "false"),
            ("PHONE_VERIFY__VERIFICATION__RESEND_COOLDOWN_SECS", "0"),
        ],
    )
    .await;
    for n in 0..4 {
        let to = format!("+1201555{:04}", 300 + n);
        let first = api(&unguarded, KEY).start(&to).await;
        assert_eq!(first.status, 201);
        assert!(first.json["id"].is_string(), "{}", first.json);
        // Started again, the same verification gets a new code.
        let again = api(&unguarded, KEY).start(&to).await;
        assert_eq!(again.status, 201);
        assert_eq!(again.json["id"], first.json["id"]);
        let code = unguarded.code_for(&to).await;
        // By id on another instance: the id names its number's slot, with no index key.
        let id = first.json["id"].as_str().unwrap();
        let read = api(&two, KEY)
            .get(&format!("/api/v1/verifications/{id}"))
            .await;
        assert_eq!(
            (read.status, read.json["to"].as_str()),
            (200, Some(to.as_str()))
        );
        let by_id = api(&two, KEY)
            .post(
                "/api/v1/verifications/check",
                json!({"id": id, "code": wrong(&code)}),
            )
            .await;
        assert_eq!(by_id.json["valid"], false, "{}", by_id.json);
        assert_eq!(by_id.json["attempts_remaining"], 4);
        let checked = api(&one, KEY).check(&to, &code).await;
        assert_eq!(checked.json["valid"], true);
        assert_eq!(checked.json["id"], first.json["id"]);
    }
}

#[tokio::test]
async fn after_a_flow_every_key_left_has_a_ttl() {
    let Some(redis) = RedisServer::start_or_skip().await else {
        return;
    };
    let app = instance(&redis.url(), false, &[]).await;
    let started = api(&app, KEY)
        .client
        .post(app.url("/api/v1/verifications"))
        .bearer_auth(KEY)
        .header("idempotency-key", "ttl-check")
        .json(&json!({"to": A}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 201);
    let code = app.code_for(A).await;
    api(&app, KEY).check(A, wrong(&code)).await;
    api(&app, KEY).check(A, &code).await;
    api(&app, KEY).start("+12015550124").await;
    assert!(redis.key_count().await >= 6);
    assert_eq!(redis.keys_without_ttl().await, Vec::<String>::new());
}

#[tokio::test]
async fn the_budget_is_shared_by_instances_on_one_redis() {
    let Some(redis) = RedisServer::start_or_skip().await else {
        return;
    };
    let extra = [("PHONE_VERIFY__SPEND__DAILY_LIMIT", "0.02")];
    let (one, two) = (
        instance(&redis.url(), false, &extra).await,
        instance(&redis.url(), false, &extra).await,
    );
    assert_eq!(api(&one, KEY).start("+12012000101").await.status, 201);
    assert_eq!(api(&two, KEY).start("+12012010101").await.status, 201);
    let refused = api(&one, KEY).start("+12012020101").await;
    assert_eq!(
        (refused.status, refused.json["code"].as_str()),
        (429, Some("spend_limit_reached")),
        "{:?}",
        refused.json
    );
    assert!(refused.header("retry-after").is_some());
}

#[tokio::test]
async fn the_fraud_guard_is_shared_by_instances_on_one_redis() {
    let Some(redis) = RedisServer::start_or_skip().await else {
        return;
    };
    let extra = [("PHONE_VERIFY__FRAUD__MIN_SENDS", "4")];
    let (one, two) = (
        instance(&redis.url(), false, &extra).await,
        instance(&redis.url(), false, &extra).await,
    );
    // Four unapproved sends to +1201555, spread over both instances.
    for line in 0..4 {
        let app = if line % 2 == 0 { &one } else { &two };
        let reply = api(app, KEY).start(&format!("+1201555{line:04}")).await;
        assert_eq!(reply.status, 201, "{:?}", reply.json);
    }
    for app in [&one, &two] {
        let blocked = api(app, KEY).start("+12015550100").await;
        assert_eq!(
            (blocked.status, blocked.json["code"].as_str()),
            (403, Some("fraud_blocked")),
            "{:?}",
            blocked.json
        );
    }
    // An approval through the other instance counts for the prefix too: a fresh prefix
    // with a used code in every four stays open.
    for line in 0..4 {
        let to = format!("+1201556{line:04}");
        assert_eq!(api(&one, KEY).start(&to).await.status, 201);
        if line < 2 {
            let code = one.code_for(&to).await;
            assert_eq!(api(&two, KEY).check(&to, &code).await.json["valid"], true);
        }
    }
    assert_eq!(api(&two, KEY).start("+12015560100").await.status, 201);
    assert_eq!(redis.keys_without_ttl().await, Vec::<String>::new());
}

#[tokio::test]
async fn a_sign_in_started_on_one_instance_is_exchanged_on_another() {
    use crate::oidc::{
        A as PHONE, VERIFIER, WEB_SECRET, authorize_path, exchange, oidc_app, param,
        redirect_query, sign_in,
    };
    let Some(redis) = RedisServer::start_or_skip().await else {
        return;
    };
    let url = redis.url();
    let env = [
        ("PHONE_VERIFY__STORE__BACKEND", "redis"),
        ("PHONE_VERIFY__STORE__REDIS_URL", url.as_str()),
        ("PHONE_VERIFY__SERVER__SECRET", SECRET),
    ];
    let issuer = "issuer = \"https://verify.example.com\"";
    let (one, two) = (oidc_app(issuer, &env).await, oidc_app(issuer, &env).await);
    // Both instances publish the same key, derived from the shared secret.
    let jwks = |app: &TestApp| {
        let url = app.url("/oidc/jwks.json");
        async move { reqwest::get(url).await.unwrap().text().await.unwrap() }
    };
    assert_eq!(jwks(&one).await, jwks(&two).await);
    let browser = one.browser();
    let approved = sign_in(&one, &browser, &authorize_path(&[]), PHONE).await;
    let query = redirect_query(&approved);
    assert_eq!(
        param(&query, "iss").as_deref(),
        Some("https://verify.example.com")
    );
    let code = param(&query, "code").unwrap();
    let (status, tokens) = exchange(&two, &code, VERIFIER, WEB_SECRET).await;
    assert_eq!(status, 200, "{tokens}");
    let info = reqwest::Client::new()
        .get(one.url("/oidc/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 200);
    assert_eq!(
        info.json::<serde_json::Value>().await.unwrap()["phone_number"],
        PHONE
    );
    let replay = exchange(&one, &code, VERIFIER, WEB_SECRET).await;
    assert_eq!(replay.1["error"], "invalid_grant", "used once, everywhere");
    assert_eq!(redis.keys_without_ttl().await, Vec::<String>::new());
}
