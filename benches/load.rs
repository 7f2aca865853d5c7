//! The load benchmark: starts `phone-verify` itself, drives it over loopback with many
//! keep-alive connections (hyper's client, one request in flight per connection) and
//! prints throughput and latency percentiles for each scenario, then memory.
//!
//! ```sh
//! cargo bench --bench load                    # every scenario, about three minutes
//! cargo bench --bench load -- --quick         # a second each, for CI: proves it runs
//! cargo bench --bench load -- start check     # only these scenarios
//! cargo bench --bench load -- --connections 128 --secs 10
//! ```
//!
//! Scenarios: `healthz`, `start`, `check`, `pages`, `oidc`, `redis`, `slow`, `memory`.
//! The figures are printed, never asserted: the run fails only when the service answers
//! something other than what the flow expects. BENCHMARKS.md records them.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_phone-verify");
const API_KEY: &str = "bench-api-key-0123456789abcdef";
const CLIENT_ID: &str = "bench";
const CLIENT_SECRET: &str = "bench-client-secret-0123456789";
const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";

// ---------------------------------------------------------------------------------------
// Options

struct Options {
    quick: bool,
    connections: usize,
    secs: f64,
    only: Vec<String>,
}

impl Options {
    fn parse() -> Self {
        let mut options = Self {
            quick: false,
            connections: 64,
            secs: 6.0,
            only: Vec::new(),
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => options.quick = true,
                "--connections" => options.connections = number(args.next(), &arg),
                "--secs" => options.secs = number(args.next(), &arg),
                // `cargo bench` passes `--bench` to every bench target.
                "--bench" => {}
                _ if arg.starts_with('-') => usage(&format!("unknown option {arg}")),
                _ => options.only.push(arg),
            }
        }
        if options.quick {
            options.secs = options.secs.min(1.0);
        }
        options
    }

    fn wants(&self, scenario: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == scenario)
    }

    fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.secs)
    }
}

fn number<T: std::str::FromStr>(value: Option<String>, option: &str) -> T {
    value
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| usage(&format!("{option} takes a number")))
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "load: {problem}\nusage: cargo bench --bench load -- [--quick] [--connections N] [--secs S] [SCENARIO ...]\n\
         scenarios: healthz start check pages oidc redis slow memory"
    );
    std::process::exit(2)
}

// ---------------------------------------------------------------------------------------
// The service under test

/// Codes the console provider printed, by number. Its output goes to a file, read when
/// a code is wanted rather than as it is written: a reader woken for every write took a
/// tenth of the machine from the service being measured.
struct Codes {
    console: Mutex<Console>,
}

/// The console output file, read so far, and the codes found in it not yet taken.
struct Console {
    file: std::fs::File,
    /// The start of a line not yet whole.
    partial: Vec<u8>,
    /// The number of the message being read.
    to: String,
    codes: HashMap<String, String>,
}

impl Console {
    /// Reads what was printed since the last read.
    fn catch_up(&mut self) {
        use std::io::Read as _;
        let mut chunk = Vec::new();
        self.file
            .read_to_end(&mut chunk)
            .expect("the console output file is readable");
        if chunk.is_empty() {
            return;
        }
        self.partial.extend_from_slice(&chunk);
        let whole = self
            .partial
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let text = String::from_utf8_lossy(&self.partial[..whole]).into_owned();
        self.partial.drain(..whole);
        for line in text.lines() {
            self.read_line(line);
        }
    }

    /// A line of `console: sms to +1…: BODY`, the body's last line being `@HOST #CODE`.
    fn read_line(&mut self, line: &str) {
        if let Some(rest) = line.strip_prefix("console: sms to ") {
            if let Some((number, _)) = rest.split_once(": ") {
                self.to = number.to_string();
            }
        } else if line.starts_with('@')
            && let Some((_, code)) = line.rsplit_once(" #")
        {
            self.codes.insert(self.to.clone(), code.to_string());
        }
    }
}

impl Codes {
    fn reading(path: &std::path::Path) -> Self {
        let file = std::fs::File::open(path).expect("the console output file opens");
        Self {
            console: Mutex::new(Console {
                file,
                partial: Vec::new(),
                to: String::new(),
                codes: HashMap::new(),
            }),
        }
    }

    /// The code sent to `to`. A send answers once its message is printed, so it is
    /// normally there at the first look.
    async fn take(&self, to: &str) -> Option<String> {
        let began = Instant::now();
        loop {
            {
                let mut console = self.console.lock().unwrap();
                if let Some(code) = console.codes.remove(to) {
                    return Some(code);
                }
                console.catch_up();
                if let Some(code) = console.codes.remove(to) {
                    return Some(code);
                }
            }
            if began.elapsed() > Duration::from_secs(10) {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Every code printed and not yet taken, as `(number, code)`.
    fn drain(&self) -> Vec<(String, String)> {
        let mut console = self.console.lock().unwrap();
        console.catch_up();
        console.codes.drain().collect()
    }
}

/// Processes whose CPU time each measurement reads: the service under load and any
/// `redis-server` it uses. The load generator (this process) is read too.
static WATCHED: std::sync::Mutex<Vec<(&'static str, u32)>> = std::sync::Mutex::new(Vec::new());

fn watch(name: &'static str, pid: u32) {
    WATCHED.lock().unwrap().push((name, pid));
}

fn unwatch(pid: u32) {
    WATCHED.lock().unwrap().retain(|&(_, p)| p != pid);
}

/// CPU time (user and system, all threads) a process has used so far, in clock ticks,
/// from `/proc/PID/stat`; 0 where it cannot be read.
fn cpu_ticks(pid: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the command name, which is in parentheses and may hold spaces:
    // utime and stime are the 14th and 15th of the whole line.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

/// The machine's CPU ticks so far, from the first line of `/proc/stat`: idle (with
/// waiting for I/O), stolen (the hypervisor ran something else on our cores), and in all
/// (user to steal; guest time is already within user). Zeros where it cannot be read.
fn machine_ticks() -> (u64, u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    if fields.len() < 8 {
        return (0, 0, 0);
    }
    (fields[3] + fields[4], fields[7], fields.iter().sum())
}

/// CPU ticks of the service, of `redis-server` (summed over those watched), of the load
/// generator, and of the whole machine: idle, stolen and in all.
#[derive(Clone, Copy, Default)]
struct Cpu {
    service: u64,
    redis: u64,
    generator: u64,
    idle: u64,
    stolen: u64,
    machine: u64,
}

impl Cpu {
    fn now() -> Self {
        let (idle, stolen, machine) = machine_ticks();
        let mut cpu = Cpu {
            generator: cpu_ticks("self"),
            idle,
            stolen,
            machine,
            ..Cpu::default()
        };
        for &(name, pid) in WATCHED.lock().unwrap().iter() {
            let ticks = cpu_ticks(&pid.to_string());
            if name == "redis" {
                cpu.redis += ticks;
            } else {
                cpu.service += ticks;
            }
        }
        cpu
    }

    fn since(self, before: Cpu) -> Cpu {
        Cpu {
            service: self.service.saturating_sub(before.service),
            redis: self.redis.saturating_sub(before.redis),
            generator: self.generator.saturating_sub(before.generator),
            idle: self.idle.saturating_sub(before.idle),
            stolen: self.stolen.saturating_sub(before.stolen),
            machine: self.machine.saturating_sub(before.machine),
        }
    }

    fn plus(self, other: Cpu) -> Cpu {
        Cpu {
            service: self.service + other.service,
            redis: self.redis + other.redis,
            generator: self.generator + other.generator,
            idle: self.idle + other.idle,
            stolen: self.stolen + other.stolen,
            machine: self.machine + other.machine,
        }
    }

    /// The share of the machine's time, in per cent, of `ticks`.
    fn share(&self, ticks: u64) -> f64 {
        if self.machine == 0 {
            return 0.0;
        }
        ticks as f64 * 100.0 / self.machine as f64
    }
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf reads a constant of the system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// A `phone-verify` process with its own configuration file; killed on drop.
struct Service {
    addr: SocketAddr,
    child: Child,
    codes: Arc<Codes>,
    _config: TempFile,
    _console: TempFile,
}

struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Settings every scenario shares (`benches/service.toml`), with `extra` (TOML) after.
fn base_config(bind: &str, extra: &str) -> String {
    include_str!("service.toml")
        .replace("{bind}", bind)
        .replace(
            "{static_dir}",
            concat!(env!("CARGO_MANIFEST_DIR"), "/static"),
        )
        .replace("{api_key}", API_KEY)
        .replace("{extra}", extra)
}

impl Service {
    /// Starts the binary with the base settings plus `extra` (TOML), on a free port.
    fn start(extra: &str) -> Self {
        Self::start_with(|bind| base_config(bind, extra))
    }

    /// Starts the binary with the configuration `config` makes for the address to bind,
    /// and waits until it accepts connections (logs are at warn: it says nothing).
    fn start_with(config: impl FnOnce(&str) -> String) -> Self {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let port = phone_verify::testing::free_port();
        let bind = format!("127.0.0.1:{port}");
        let config = config(&bind);
        let dir = std::env::temp_dir().join(format!("pv-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!(
            "config-{}.toml",
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, &config).unwrap();
        // In memory where there is a tmpfs: the file must not cost the machine disk writes.
        let shm = std::path::Path::new("/dev/shm");
        let console = if shm.is_dir() {
            shm.join(format!("pv-bench-{}-{}.console", std::process::id(), port))
        } else {
            path.with_extension("console")
        };
        let output = std::fs::File::create(&console).expect("a console output file");
        let mut command = Command::new(BIN);
        for (name, _) in std::env::vars() {
            if name.starts_with("PHONE_VERIFY") || name == "RUST_LOG" {
                command.env_remove(name);
            }
        }
        let mut child = command
            .current_dir(&dir)
            .env("PHONE_VERIFY_CONFIG", &path)
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
        let codes = Arc::new(Codes::reading(&console));
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            // Warnings are expected (the console provider says it is for development);
            // errors are worth seeing.
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("ERROR") {
                    eprintln!("phone-verify: {line}");
                }
            }
        });
        let addr: SocketAddr = bind.parse().unwrap();
        let began = Instant::now();
        while std::net::TcpStream::connect(addr).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("phone-verify exited ({status}) with this configuration:\n{config}");
            }
            if began.elapsed() > Duration::from_secs(30) {
                panic!("phone-verify did not listen on {bind} within 30 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        watch("service", child.id());
        Self {
            addr,
            child,
            codes,
            _config: TempFile(path),
            _console: TempFile(console),
        }
    }

    /// Resident memory, from `/proc`.
    fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc is readable");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("VmRSS in /proc/PID/status")
            * 1024
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        unwatch(self.child.id());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Distinct, valid US numbers: +1 201 NXX XXXX, eight million of them.
fn nth_number(n: u64) -> String {
    let n = n % 8_000_000;
    format!("+1201{:03}{:04}", 200 + n / 10_000, n % 10_000)
}

static NEXT_NUMBER: AtomicU64 = AtomicU64::new(0);

fn next_number() -> String {
    nth_number(NEXT_NUMBER.fetch_add(1, Ordering::Relaxed))
}

// ---------------------------------------------------------------------------------------
// The client

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    addr: SocketAddr,
    host: HeaderValue,
    sender: Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>>,
}

struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap_or("")
    }
}

impl Conn {
    fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            host: HeaderValue::from_str(&addr.to_string()).unwrap(),
            sender: None,
        }
    }

    async fn connect(&mut self) -> Result<(), String> {
        let stream = TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        stream.set_nodelay(true).ok();
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(connection);
        self.sender = Some(sender);
        Ok(())
    }

    /// Sends one request and reads the whole answer; reconnects when the server closed.
    async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&'static str, &str)],
        body: Bytes,
    ) -> Result<Reply, String> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            self.connect().await?;
        }
        let sender = self.sender.as_mut().unwrap();
        sender.ready().await.map_err(|e| format!("ready: {e}"))?;
        let mut request = Request::builder().method(method).uri(path);
        let map = request.headers_mut().unwrap();
        map.insert("host", self.host.clone());
        for (name, value) in headers {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        let request = request.body(Full::new(body)).unwrap();
        let answer = match sender.send_request(request).await {
            Ok(answer) => answer,
            Err(e) => {
                self.sender = None;
                return Err(format!("{path}: {e}"));
            }
        };
        let (parts, body) = answer.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| format!("{path} body: {e}"))?
            .to_bytes();
        Ok(Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }

    async fn get(&mut self, path: &str, headers: &[(&'static str, &str)]) -> Result<Reply, String> {
        self.send(Method::GET, path, headers, Bytes::new()).await
    }

    async fn post(
        &mut self,
        path: &str,
        headers: &[(&'static str, &str)],
        body: String,
    ) -> Result<Reply, String> {
        self.send(Method::POST, path, headers, Bytes::from(body))
            .await
    }
}

fn expect(reply: &Reply, status: u16, what: &str) -> Result<(), String> {
    if reply.status == status {
        Ok(())
    } else {
        Err(format!(
            "{what}: expected {status}, got {}: {}",
            reply.status,
            reply.text().chars().take(300).collect::<String>()
        ))
    }
}

// ---------------------------------------------------------------------------------------
// Measuring

/// Latencies in microseconds, and how many requests and operations were made.
#[derive(Default)]
struct Tally {
    micros: Vec<u32>,
    operations: u64,
}

impl Tally {
    /// Times one request.
    async fn time<T>(&mut self, request: impl Future<Output = T>) -> T {
        let began = Instant::now();
        let answer = request.await;
        self.micros
            .push(began.elapsed().as_micros().min(u32::MAX as u128) as u32);
        answer
    }
}

/// What one connection does, again and again until the time is up.
trait Scenario: Send + Sync + 'static {
    /// One operation (one or more requests). `Ok(false)`: there is no more work.
    fn step(
        &self,
        conn: &mut Conn,
        tally: &mut Tally,
    ) -> impl Future<Output = Result<bool, String>> + Send;
}

struct Figures {
    name: String,
    requests: u64,
    operations: u64,
    elapsed: Duration,
    micros: Vec<u32>,
    /// CPU ticks spent while it ran.
    cpu: Cpu,
}

impl Figures {
    fn per_sec(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn ops_per_sec(&self) -> f64 {
        self.operations as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> f64 {
        if self.micros.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * self.micros.len() as f64).ceil() as usize;
        f64::from(self.micros[rank.clamp(1, self.micros.len()) - 1]) / 1000.0
    }

    /// CPU microseconds per request of `ticks`.
    fn cpu_micros(&self, ticks: u64) -> f64 {
        if self.requests == 0 {
            return 0.0;
        }
        ticks as f64 / ticks_per_sec() * 1e6 / self.requests as f64
    }

    fn max(&self) -> f64 {
        self.micros.last().map_or(0.0, |&m| f64::from(m) / 1000.0)
    }

    fn empty(name: &str) -> Self {
        Self {
            name: name.to_string(),
            requests: 0,
            operations: 0,
            elapsed: Duration::ZERO,
            micros: Vec::new(),
            cpu: Cpu::default(),
        }
    }

    /// Adds the figures of another slice of the same scenario.
    fn absorb(&mut self, slice: Figures) {
        self.requests += slice.requests;
        self.operations += slice.operations;
        self.elapsed += slice.elapsed;
        self.micros.extend(slice.micros);
        self.cpu = self.cpu.plus(slice.cpu);
    }

    fn print(&self) {
        println!(
            "{:<24} {:>9} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>7.1} {:>7.1} {:>7.1} {:>6.1} {:>6.1}",
            self.name,
            self.requests,
            self.per_sec(),
            self.percentile(50.0),
            self.percentile(90.0),
            self.percentile(99.0),
            self.max(),
            self.cpu_micros(self.cpu.service),
            self.cpu_micros(self.cpu.redis),
            self.cpu_micros(self.cpu.generator),
            self.cpu.share(self.cpu.idle),
            self.cpu.share(self.cpu.stolen),
        );
    }
}

fn print_header() {
    println!(
        "{:<24} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7} {:>6} {:>6}",
        "scenario",
        "requests",
        "req/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "svc µs",
        "rds µs",
        "gen µs",
        "idle %",
        "st %"
    );
    println!(
        "{:<24} {:>56} (CPU per request: the service, redis-server, this load generator;",
        "", ""
    );
    println!(
        "{:<24} {:>56}  then the machine's idle time, and time the hypervisor stole)",
        "", ""
    );
}

/// Runs `scenario` on `connections` connections for `duration` (or until it runs out of
/// work), and gathers every latency. Any unexpected answer ends the run with an error.
async fn drive<S: Scenario>(
    name: &str,
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    scenario: Arc<S>,
) -> Result<Figures, String> {
    let figures = measure(name, addr, connections, duration, scenario).await?;
    figures.print();
    Ok(figures)
}

/// Makes `count` starts, then reads the service's resident memory once it has settled.
async fn starts_then_rss(
    service: &Service,
    options: &Options,
    name: &str,
    count: u64,
) -> Result<u64, String> {
    let starts = Arc::new(Counted::new(count));
    drive(
        name,
        service.addr,
        options.connections,
        Duration::from_secs(600),
        starts,
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(service.rss_bytes())
}

/// How many slices `beside_healthz` cuts a scenario into.
const SLICES: u32 = 6;

/// Drives `scenario` in slices alternating with `/healthz` on the same service, and
/// returns its figures and those of the `/healthz` measured beside it. This machine is
/// virtual and shared: its speed drifts by a fifth from one half-minute to the next, so
/// a ratio to a ceiling measured at another moment says more about the moment than
/// about the service. Measured in alternation, both see the same machine.
async fn beside_healthz<S: Scenario>(
    name: &str,
    addr: SocketAddr,
    connections: usize,
    options: &Options,
    scenario: Arc<S>,
) -> Result<(Figures, Figures), String> {
    let slices = if options.quick { 1 } else { SLICES };
    let slice = options.duration() / slices;
    let mut figures = Figures::empty(name);
    let mut ceiling = Figures::empty("  /healthz beside it");
    for _ in 0..slices {
        ceiling.absorb(measure("", addr, connections, slice, Arc::new(Healthz)).await?);
        figures.absorb(measure("", addr, connections, slice, scenario.clone()).await?);
    }
    // Percentiles read the latencies in order.
    figures.micros.sort_unstable();
    ceiling.micros.sort_unstable();
    figures.print();
    ceiling.print();
    Ok((figures, ceiling))
}

/// `drive`, without printing.
async fn measure<S: Scenario>(
    name: &str,
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    scenario: Arc<S>,
) -> Result<Figures, String> {
    let mut conns = Vec::with_capacity(connections);
    for _ in 0..connections {
        let mut conn = Conn::new(addr);
        conn.connect().await?;
        conns.push(conn);
    }
    let cpu_before = Cpu::now();
    let began = Instant::now();
    let deadline = began + duration;
    let failed = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|mut conn| {
            let scenario = scenario.clone();
            let failed = failed.clone();
            tokio::spawn(async move {
                let mut tally = Tally::default();
                while Instant::now() < deadline && !failed.load(Ordering::Relaxed) {
                    match scenario.step(&mut conn, &mut tally).await {
                        Ok(true) => tally.operations += 1,
                        Ok(false) => break,
                        Err(e) => {
                            failed.store(true, Ordering::Relaxed);
                            return Err(e);
                        }
                    }
                }
                Ok((tally, Instant::now()))
            })
        })
        .collect();
    let mut micros = Vec::new();
    let mut operations = 0;
    let mut last = began;
    for task in tasks {
        let (tally, ended) = task.await.map_err(|e| e.to_string())??;
        micros.extend(tally.micros);
        operations += tally.operations;
        last = last.max(ended);
    }
    micros.sort_unstable();
    Ok(Figures {
        name: name.to_string(),
        requests: micros.len() as u64,
        operations,
        elapsed: last - began,
        micros,
        cpu: Cpu::now().since(cpu_before),
    })
}

// ---------------------------------------------------------------------------------------
// Scenarios

struct Healthz;

impl Scenario for Healthz {
    async fn step(&self, conn: &mut Conn, tally: &mut Tally) -> Result<bool, String> {
        let reply = tally.time(conn.get("/healthz", &[])).await?;
        expect(&reply, 200, "GET /healthz")?;
        Ok(true)
    }
}

const JSON: (&str, &str) = ("content-type", "application/json");
const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");
const BEARER: (&str, &str) = ("authorization", "Bearer bench-api-key-0123456789abcdef");

/// `POST /api/v1/verifications` for a number never used before.
struct Start;

impl Scenario for Start {
    async fn step(&self, conn: &mut Conn, tally: &mut Tally) -> Result<bool, String> {
        let body = format!(r#"{{"to":"{}","channel":"sms"}}"#, next_number());
        let reply = tally
            .time(conn.post("/api/v1/verifications", &[JSON, BEARER], body))
            .await?;
        expect(&reply, 201, "POST /api/v1/verifications")?;
        Ok(true)
    }
}

/// `POST /api/v1/verifications/check` of pending verifications, with their codes (each
/// is approved, so used once) or with a wrong one (cycling over them).
struct Check {
    pairs: Vec<(String, String)>,
    next: AtomicUsize,
    right: bool,
}

fn wrong(code: &str) -> String {
    code.chars()
        .map(|c| if c == '9' { '0' } else { (c as u8 + 1) as char })
        .collect()
}

impl Scenario for Check {
    async fn step(&self, conn: &mut Conn, tally: &mut Tally) -> Result<bool, String> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let (to, code) = if self.right {
            match self.pairs.get(n) {
                Some(pair) => pair,
                None => return Ok(false),
            }
        } else {
            &self.pairs[n % self.pairs.len()]
        };
        let code = if self.right {
            code.clone()
        } else {
            wrong(code)
        };
        let body = format!(r#"{{"to":"{to}","code":"{code}"}}"#);
        let reply = tally
            .time(conn.post("/api/v1/verifications/check", &[JSON, BEARER], body))
            .await?;
        expect(&reply, 200, "POST /api/v1/verifications/check")?;
        let approved = reply.text().contains(r#""status":"approved""#);
        if approved != self.right {
            return Err(format!("check of {to} answered {}", reply.text()));
        }
        Ok(true)
    }
}

/// A person on the hosted pages: the phone form, the number, the code form, the code
/// from the terminal.
struct Pages {
    codes: Arc<Codes>,
    /// Start at `/oidc/authorize` and keep the authorization code it ends with.
    authorize: Option<String>,
    issued: Mutex<Vec<String>>,
    wanted: usize,
}

/// The cookie a response set, as `name=value`.
fn cookie_of(reply: &Reply, jar: &mut String) {
    if let Some(set) = reply.header("set-cookie") {
        *jar = set.split(';').next().unwrap_or("").to_string();
    }
}

fn csrf_of(page: &str) -> Result<String, String> {
    page.split(r#"name="csrf_token" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(String::from)
        .ok_or_else(|| "no csrf_token on the page".to_string())
}

impl Scenario for Pages {
    async fn step(&self, conn: &mut Conn, tally: &mut Tally) -> Result<bool, String> {
        if self.authorize.is_some() && self.issued.lock().unwrap().len() >= self.wanted {
            return Ok(false);
        }
        let mut jar = String::new();
        let start = self.authorize.as_deref().unwrap_or("/");
        let form = tally.time(conn.get(start, &[])).await?;
        expect(&form, 200, start)?;
        cookie_of(&form, &mut jar);
        let csrf = csrf_of(form.text())?;
        let to = next_number();
        let body = serde_urlencoded::to_string([
            ("phone", to.as_str()),
            ("channel", "sms"),
            ("csrf_token", &csrf),
        ])
        .unwrap();
        let sent = tally
            .time(conn.post("/request", &[FORM, ("cookie", &jar)], body))
            .await?;
        expect(&sent, 303, "POST /request")?;
        cookie_of(&sent, &mut jar);
        // As a browser does: follow the redirect to the code form (its session, and so
        // its CSRF token, is new: it is bound to the verification now).
        let code_form = tally.time(conn.get("/verify", &[("cookie", &jar)])).await?;
        expect(&code_form, 200, "GET /verify")?;
        cookie_of(&code_form, &mut jar);
        let csrf = csrf_of(code_form.text())?;
        let code = self
            .codes
            .take(&to)
            .await
            .ok_or_else(|| format!("no code printed for {to}"))?;
        let body =
            serde_urlencoded::to_string([("code", code.as_str()), ("csrf_token", &csrf)]).unwrap();
        let verified = tally
            .time(conn.post("/verify", &[FORM, ("cookie", &jar)], body))
            .await?;
        expect(&verified, 303, "POST /verify")?;
        let location = verified.header("location").unwrap_or("");
        if self.authorize.is_some() {
            let code = url::Url::parse(location)
                .ok()
                .and_then(|u| {
                    u.query_pairs()
                        .find(|(k, _)| k == "code")
                        .map(|(_, v)| v.into_owned())
                })
                .ok_or_else(|| format!("sign-in ended at {location:?}"))?;
            self.issued.lock().unwrap().push(code);
        } else if location != "/success" {
            return Err(format!("POST /verify went to {location:?}"));
        }
        Ok(true)
    }
}

/// `POST /oidc/token` exchanging codes from sign-ins, each once.
struct TokenExchange {
    codes: Vec<String>,
    next: AtomicUsize,
    basic: String,
}

impl Scenario for TokenExchange {
    async fn step(&self, conn: &mut Conn, tally: &mut Tally) -> Result<bool, String> {
        let Some(code) = self.codes.get(self.next.fetch_add(1, Ordering::Relaxed)) else {
            return Ok(false);
        };
        let body = serde_urlencoded::to_string([
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
        ])
        .unwrap();
        let reply = tally
            .time(conn.post("/oidc/token", &[FORM, ("authorization", &self.basic)], body))
            .await?;
        expect(&reply, 200, "POST /oidc/token")?;
        if !reply.text().contains("id_token") {
            return Err(format!("token answer without id_token: {}", reply.text()));
        }
        Ok(true)
    }
}

// ---------------------------------------------------------------------------------------
// Runs

/// Each of start, check with a wrong code and with the right one, beside `/healthz`.
struct StartAndCheck {
    start: (Figures, Figures),
    wrong: (Figures, Figures),
    right: (Figures, Figures),
}

/// A scenario's throughput as a share of the `/healthz` measured beside it.
fn share((figures, ceiling): &(Figures, Figures)) -> f64 {
    figures.per_sec() / ceiling.per_sec()
}

/// Start, then check wrong and right, on one service.
async fn start_and_check(
    label: &str,
    service: &Service,
    options: &Options,
) -> Result<StartAndCheck, String> {
    let n = options.connections;
    let start = beside_healthz(
        &format!("{label}start"),
        service.addr,
        n,
        options,
        Arc::new(Start),
    )
    .await?;
    let started = &start.0;
    // The printing of the last codes may trail the answers by a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pairs = service.codes.drain();
    if (pairs.len() as u64) < started.requests {
        return Err(format!(
            "{} starts but {} codes printed",
            started.requests,
            pairs.len()
        ));
    }
    let wrong = Arc::new(Check {
        pairs,
        next: AtomicUsize::new(0),
        right: false,
    });
    let wrong_figures = beside_healthz(
        &format!("{label}check (wrong code)"),
        service.addr,
        n,
        options,
        wrong.clone(),
    )
    .await?;
    let right = Arc::new(Check {
        pairs: Arc::into_inner(wrong).expect("the run ended").pairs,
        next: AtomicUsize::new(0),
        right: true,
    });
    let right_figures = beside_healthz(
        &format!("{label}check (right code)"),
        service.addr,
        n,
        options,
        right,
    )
    .await?;
    Ok(StartAndCheck {
        start,
        wrong: wrong_figures,
        right: right_figures,
    })
}

fn ratio(line: &mut String, what: &str, value: f64, target: f64) {
    let mark = if value >= target { "meets" } else { "BELOW" };
    let _ = writeln!(
        line,
        "  {what:<46} {:>6.1} %   target >= {:.0} %   {mark}",
        value * 100.0,
        target * 100.0
    );
}

fn p99(line: &mut String, figures: &Figures) {
    let value = figures.percentile(99.0);
    let mark = if value < 10.0 { "meets" } else { "ABOVE" };
    let _ = writeln!(
        line,
        "  p99 of {:<39} {value:>6.2} ms  target < 10 ms   {mark}",
        figures.name
    );
}

/// 1,000 starts at once against a provider that answers after 250 ms.
async fn slow_provider(summary: &mut String) -> Result<(), String> {
    let mock = SlowProvider::start(Duration::from_millis(250)).await;
    let extra = format!(
        r#"[channels]
sms = ["twilio"]

[providers.twilio]
account_sid = "AC00000000000000000000000000000000"
auth_token = "bench-twilio-token-0123456789abcdef"
from = "+12015550100"
base_url = "http://{}"
"#,
        mock.addr
    );
    let service = Service::start(&extra);
    let burst = 1000;
    let mut conns = Vec::with_capacity(burst);
    for _ in 0..burst {
        let mut conn = Conn::new(service.addr);
        conn.connect().await?;
        conns.push(conn);
    }
    // Meanwhile one more connection asks /healthz: nothing may wait on the provider.
    let done = Arc::new(AtomicBool::new(false));
    let mut probe = Conn::new(service.addr);
    probe.connect().await?;
    let probing = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut tally = Tally::default();
            while !done.load(Ordering::Relaxed) {
                let reply = tally.time(probe.get("/healthz", &[])).await?;
                expect(&reply, 200, "GET /healthz")?;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok::<_, String>(tally)
        })
    };
    let barrier = Arc::new(tokio::sync::Barrier::new(burst + 1));
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|mut conn| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let mut tally = Tally::default();
                barrier.wait().await;
                Start.step(&mut conn, &mut tally).await?;
                Ok::<_, String>(tally.micros)
            })
        })
        .collect();
    barrier.wait().await;
    let began = Instant::now();
    let mut micros = Vec::new();
    for task in tasks {
        micros.extend(task.await.map_err(|e| e.to_string())??);
    }
    let elapsed = began.elapsed();
    done.store(true, Ordering::Relaxed);
    let mut probe_micros = probing.await.map_err(|e| e.to_string())??.micros;
    micros.sort_unstable();
    probe_micros.sort_unstable();
    let figures = Figures {
        name: "slow provider: 1000 starts".into(),
        requests: micros.len() as u64,
        operations: micros.len() as u64,
        elapsed,
        micros,
        cpu: Cpu::default(),
    };
    figures.print();
    let probe = Figures {
        name: "  /healthz meanwhile".into(),
        requests: probe_micros.len() as u64,
        operations: 0,
        elapsed,
        micros: probe_micros,
        cpu: Cpu::default(),
    };
    probe.print();
    let provider_calls = mock.calls.load(Ordering::Relaxed);
    if provider_calls < burst as u64 {
        return Err(format!(
            "the provider was asked {provider_calls} times, not {burst}"
        ));
    }
    let mark = if elapsed <= Duration::from_secs(2) {
        "meets"
    } else {
        "ABOVE"
    };
    let _ = writeln!(
        summary,
        "  {:<46} {:>6.2} s   target <= 2 s    {mark}",
        "1000 starts, provider answering in 250 ms",
        elapsed.as_secs_f64()
    );
    Ok(())
}

/// A provider (Twilio's Messages API, as far as phone-verify looks) that answers late.
struct SlowProvider {
    addr: SocketAddr,
    calls: Arc<AtomicU64>,
}

impl SlowProvider {
    async fn start(delay: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let calls = Arc::new(AtomicU64::new(0));
        let counter = calls.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let counter = counter.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_request| {
                        let counter = counter.clone();
                        async move {
                            tokio::time::sleep(delay).await;
                            let n = counter.fetch_add(1, Ordering::Relaxed);
                            let body = format!(r#"{{"sid":"SM{n:032x}","status":"queued"}}"#);
                            let mut answer = hyper::Response::new(Full::new(Bytes::from(body)));
                            *answer.status_mut() = hyper::StatusCode::CREATED;
                            answer.headers_mut().insert(
                                "content-type",
                                HeaderValue::from_static("application/json"),
                            );
                            Ok::<_, std::convert::Infallible>(answer)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, calls }
    }
}

/// RSS with `count` pending verifications, and after they expire.
async fn memory(options: &Options, summary: &mut String) -> Result<(), String> {
    let count: u64 = if options.quick { 5_000 } else { 200_000 };
    let ttl = 20;
    let extra = format!(
        "[verification]\nttl_secs = {ttl}\nretain_ended_secs = 1\nsend_window_secs = {ttl}\n"
    );
    let service =
        Service::start_with(|bind| base_config(bind, "").replace("[verification]\n", &extra));
    // Nothing reads the codes here: they stay in the console file, outside the service.
    let baseline = starts_then_rss(&service, options, "memory: warm-up starts", 2_000).await?;
    let loaded =
        starts_then_rss(&service, options, &format!("memory: {count} starts"), count).await?;
    let per = loaded.saturating_sub(baseline) as f64 / count as f64;
    println!(
        "memory: RSS {:.1} MB before, {:.1} MB with {count} pending: {per:.0} bytes each",
        mb(baseline),
        mb(loaded)
    );
    let mark = if per <= 300.0 { "meets" } else { "ABOVE" };
    let _ = writeln!(
        summary,
        "  {:<46} {per:>6.0} B   target <= 300 B  {mark}",
        "RSS per pending verification"
    );
    if options.quick {
        println!("memory: after expiry: not measured in quick mode");
        return Ok(());
    }
    // Expired, retained for a second, then swept by a later write (at most every 30 s).
    let began = Instant::now();
    let mut conn = Conn::new(service.addr);
    let mut after = loaded;
    while began.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_secs(5)).await;
        Start.step(&mut conn, &mut Tally::default()).await?;
        after = service.rss_bytes();
        if began.elapsed() > Duration::from_secs(ttl + 2)
            && after < baseline + (loaded - baseline) / 10
        {
            break;
        }
    }
    println!(
        "memory: RSS {:.1} MB after they expired ({:.0} s later)",
        mb(after),
        began.elapsed().as_secs_f64()
    );
    let back =
        after.saturating_sub(baseline) as f64 / loaded.saturating_sub(baseline).max(1) as f64;
    let mark = if back <= 0.1 { "meets" } else { "ABOVE" };
    let _ = writeln!(
        summary,
        "  {:<46} {:>6.1} MB  baseline {:.1} MB  {mark}",
        "RSS after expiry",
        mb(after),
        mb(baseline)
    );
    Ok(())
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

/// Exactly `count` starts, then no more work.
struct Counted {
    left: AtomicU64,
}

impl Counted {
    fn new(count: u64) -> Self {
        Self {
            left: AtomicU64::new(count),
        }
    }
}

impl Scenario for Counted {
    async fn step(&self, conn: &mut Conn, tally: &mut Tally) -> Result<bool, String> {
        if self
            .left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_err()
        {
            return Ok(false);
        }
        Start.step(conn, tally).await
    }
}

async fn run(options: Options) -> Result<(), String> {
    let n = options.connections;
    let secs = options.duration();
    println!(
        "phone-verify load benchmark: {n} connections, {:.1} s per scenario{}, {} cores",
        options.secs,
        if options.quick { " (quick)" } else { "" },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    print_header();
    let mut summary = String::new();
    let mut healthz = None;
    let mut memory_start = None;
    if options.wants("healthz") || options.wants("start") || options.wants("check") {
        let service = Service::start("");
        // A moment of warm-up, not counted.
        drive(
            "(warm-up)",
            service.addr,
            n,
            Duration::from_millis(500),
            Arc::new(Healthz),
        )
        .await?;
        let h = drive("healthz", service.addr, n, secs, Arc::new(Healthz)).await?;
        if options.wants("start") || options.wants("check") {
            let runs = start_and_check("", &service, &options).await?;
            ratio(
                &mut summary,
                "start / healthz beside it",
                share(&runs.start),
                0.5,
            );
            ratio(
                &mut summary,
                "check, wrong code / healthz beside it",
                share(&runs.wrong),
                0.6,
            );
            ratio(
                &mut summary,
                "check, right code / healthz beside it",
                share(&runs.right),
                0.6,
            );
            p99(&mut summary, &runs.start.0);
            p99(&mut summary, &runs.wrong.0);
            p99(&mut summary, &runs.right.0);
            memory_start = Some(runs);
        }
        healthz = Some(h);
    }
    if options.wants("pages") {
        let service = Service::start("");
        let pages = Arc::new(Pages {
            codes: service.codes.clone(),
            authorize: None,
            issued: Mutex::new(Vec::new()),
            wanted: 0,
        });
        let figures = drive("pages (4 requests)", service.addr, n, secs, pages).await?;
        println!(
            "{:<24} {:>9} {:>10.0}",
            "  pages: whole flows",
            figures.operations,
            figures.ops_per_sec()
        );
    }
    if options.wants("oidc") {
        let extra = format!(
            r#"[oidc]
enabled = true

[[oidc.clients]]
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
redirect_uris = ["{REDIRECT_URI}"]
"#
        );
        let service = Service::start(&extra);
        let wanted = if options.quick { 500 } else { 20_000 };
        let query = serde_urlencoded::to_string([
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "openid phone"),
            ("state", "bench"),
            ("nonce", "bench"),
        ])
        .unwrap();
        let sign_ins = Arc::new(Pages {
            codes: service.codes.clone(),
            authorize: Some(format!("/oidc/authorize?{query}")),
            issued: Mutex::new(Vec::new()),
            wanted,
        });
        drive(
            "oidc sign-ins (4 req.)",
            service.addr,
            n,
            Duration::from_secs(600),
            sign_ins.clone(),
        )
        .await?;
        let codes = std::mem::take(&mut *sign_ins.issued.lock().unwrap());
        use base64::Engine as _;
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
        );
        let exchange = Arc::new(TokenExchange {
            codes,
            next: AtomicUsize::new(0),
            basic,
        });
        drive("oidc token exchange", service.addr, n, secs, exchange).await?;
    }
    if options.wants("redis") {
        match phone_verify::testing::RedisServer::start_or_skip().await {
            None => println!("redis: skipped, redis-server not found"),
            Some(redis) => {
                let extra = format!(
                    "[store]\nbackend = \"redis\"\nredis_url = \"{}\"\n",
                    redis.url()
                );
                let service = Service::start(&extra);
                let redis_pid = redis.pid().unwrap_or(0);
                watch("redis", redis_pid);
                let runs = start_and_check("redis: ", &service, &options).await;
                unwatch(redis_pid);
                let runs = runs?;
                // Each backend's share of the ceiling measured beside it, compared: the
                // two ran at different moments of a machine whose speed drifts.
                if let Some(memory) = &memory_start {
                    ratio(
                        &mut summary,
                        "redis start / memory start",
                        share(&runs.start) / share(&memory.start),
                        0.5,
                    );
                    ratio(
                        &mut summary,
                        "redis check (right) / memory check",
                        share(&runs.right) / share(&memory.right),
                        0.5,
                    );
                }
                p99(&mut summary, &runs.start.0);
                p99(&mut summary, &runs.wrong.0);
                p99(&mut summary, &runs.right.0);
            }
        }
    }
    if options.wants("slow") {
        slow_provider(&mut summary).await?;
    }
    if options.wants("memory") {
        memory(&options, &mut summary).await?;
    }
    if let Some(h) = healthz {
        println!("\ntargets (healthz {:.0} req/s in this run):", h.per_sec());
    } else {
        println!("\ntargets:");
    }
    print!("{summary}");
    Ok(())
}

/// The slow-provider scenario holds over 2,000 sockets in phone-verify (1,000 from us,
/// 1,000 to the provider): raise the soft limit on open files to the hard one, for us
/// and the processes we start.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn raise_open_file_limit() {}

fn main() {
    let options = Options::parse();
    raise_open_file_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Err(e) = runtime.block_on(run(options)) {
        eprintln!("load: {e}");
        std::process::exit(1);
    }
}
