//! Slow clients cannot hold the server: headers and bodies that do not arrive within
//! `server.request_timeout_secs` are cut off, while everyone else is served.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::spawn_app_with;

/// Reads until the server closes the connection (or `limit` passes); what it sent.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&seen).into_owned()),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Err(_) => return None,
        }
    }
}

#[tokio::test]
async fn hundreds_of_slow_bodies_are_cut_after_the_deadline_while_health_answers() {
    let app = spawn_app_with(&[
        ("PHONE_VERIFY__SERVER__REQUEST_TIMEOUT_SECS", "2"),
        ("PHONE_VERIFY__API__KEYS", "slow-clients-key-0123"),
    ])
    .await;
    let address = app.address.clone();
    let started = Instant::now();
    let mut slow = Vec::new();
    for i in 0..300 {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        // Half drip a form body, half an API body: both promise 16,000 bytes.
        let head = if i % 2 == 0 {
            "POST /request HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 16000\r\n\r\nphone="
        } else {
            "POST /api/v1/verifications HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer slow-clients-key-0123\r\nContent-Type: application/json\r\nContent-Length: 16000\r\n\r\n{\"to\":"
        };
        stream.write_all(head.as_bytes()).await.unwrap();
        slow.push(stream);
    }
    // Everyone else is still served while those connections hang.
    let http = reqwest::Client::new();
    for _ in 0..5 {
        let health = http.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(health.status(), 200);
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "served before the deadline"
    );
    let mut statuses = Vec::new();
    for stream in &mut slow {
        let answer = read_until_closed(stream, Duration::from_secs(6))
            .await
            .expect("a slow body is cut off");
        statuses.push(answer.split(' ').nth(1).unwrap_or("").to_string());
    }
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "not before the deadline"
    );
    assert!(
        statuses.iter().all(|s| s == "408" || s.is_empty()),
        "{statuses:?}"
    );
    assert!(
        statuses.iter().filter(|s| *s == "408").count() >= 290,
        "{statuses:?}"
    );
    assert!(app.messages().is_empty());
    assert_eq!(
        http.get(app.url("/healthz")).send().await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn headers_dripped_on_a_kept_alive_connection_are_cut_after_the_deadline() {
    let app = spawn_app_with(&[("PHONE_VERIFY__SERVER__REQUEST_TIMEOUT_SECS", "2")]).await;
    let mut connections = Vec::new();
    for _ in 0..50 {
        let mut stream = TcpStream::connect(&app.address).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let n = stream.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        // The next request's headers start, then trickle.
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .unwrap();
        connections.push(stream);
    }
    let started = Instant::now();
    let drip = tokio::spawn(async move {
        for _ in 0..8 {
            for stream in &mut connections {
                let _ = stream.write_all(b"X-Slow: 1\r\n").await;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        connections
    });
    let mut connections = drip.await.unwrap();
    for stream in &mut connections {
        assert!(
            read_until_closed(stream, Duration::from_secs(3))
                .await
                .is_some(),
            "cut off"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(8));
}

#[tokio::test]
async fn a_normal_keep_alive_connection_is_not_cut() {
    let app = spawn_app_with(&[("PHONE_VERIFY__SERVER__REQUEST_TIMEOUT_SECS", "1")]).await;
    let mut stream = TcpStream::connect(&app.address).await.unwrap();
    // Requests well inside the deadline, for longer than the deadline in total.
    for _ in 0..6 {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let n = stream.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
}
