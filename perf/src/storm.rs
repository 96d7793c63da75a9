//! The reconnect storm of issue 14, against the real chat demo: `storm --clients N`.
//!
//! N omni clients (in `storm-clients` child processes) join the demo's room. Then either the
//! server is killed with SIGKILL and started again on the same port (`kill`: every client
//! comes back to a new process, so into a new session, with a `reset`), or a proxy between
//! them drops every connection at once while the server stays up (`blip`: every client should
//! resume its session within the demo's 30 s grace, with no `reset`; a proxy per client
//! process, as a proxy holds two files per client). Measured: the time until
//! every client is back, how many are back by 30 s, and then whether 100 clients spread over
//! the population see their one chat message confirmed within 30 s, and how fast, and the
//! server's peak memory. `--presence count` has the clients ask only for the room's count, as
//! clients that do not show the list would (each client of a load process keeping the whole
//! list is what limits a run's size on one machine, not the server).
//!
//! The demo must be built first: `cargo build --release --example chat` in the repository.
//! Each phase has a deadline; a phase that runs out is reported with what it reached.

use std::time::{Duration, Instant};

use crate::Options;
use crate::child::Child;

/// The demo's binary, as `cargo build --release --example chat` leaves it.
const DEMO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../target/release/examples/chat"
);

/// The window the issue asks about, after the kill or blip and after the messages are sent.
const WINDOW: Duration = Duration::from_secs(30);

/// How often the driver reads the children's counters and checks they are alive.
const POLL: Duration = Duration::from_millis(100);

/// What to break between the clients and the server.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Kill,
    Blip,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Kill => "kill -9 + restart",
            Scenario::Blip => "network blip",
        }
    }
}

/// The run's settings, from the command line.
struct Plan {
    clients: usize,
    per_child: usize,
    senders: usize,
    /// Clients each child connects per second at the start (the start is not measured).
    connect_rate: usize,
    setup: Duration,
    settle: Duration,
    confirm: Duration,
    demo: String,
    backlog: Option<u64>,
    /// What each client asks to be shown of the room's presence: `list` (every client holds
    /// the room's list, as a browser showing it does) or `count`.
    presence: String,
    /// Whether a scenario goes through the proxy.
    blip: bool,
}

pub fn run(options: &Options) {
    let plan = Plan {
        clients: options.get("clients", 1000) as usize,
        per_child: options.get("per-child", 5000) as usize,
        senders: options.get("senders", 100) as usize,
        connect_rate: options.get("connect-rate", 2000) as usize,
        setup: Duration::from_secs(options.get("setup", 90)),
        settle: Duration::from_secs(options.get("settle", 60)),
        confirm: Duration::from_secs(options.get("confirm", 30)),
        demo: options.text("demo", DEMO).to_string(),
        backlog: options.number("backlog"),
        presence: options.text("presence", "list").to_string(),
        blip: false,
    };
    let scenarios = match options.text("scenario", "both") {
        "kill" => vec![Scenario::Kill],
        "blip" => vec![Scenario::Blip],
        "both" => vec![Scenario::Kill, Scenario::Blip],
        other => crate::usage(&format!("--scenario kill, blip or both, not {other}")),
    };
    if !["list", "count"].contains(&plan.presence.as_str()) {
        crate::usage(&format!("--presence list or count, not {}", plan.presence));
    }
    let plan = Plan {
        blip: scenarios.contains(&Scenario::Blip),
        ..plan
    };
    if !std::path::Path::new(&plan.demo).exists() {
        eprintln!(
            "no chat demo at {}: build it first with `cargo build --release --example chat` \
             in the repository (or pass --demo PATH)",
            plan.demo
        );
        std::process::exit(2);
    }
    check_file_limit(&plan);
    println!(
        "## Reconnect storm: {} clients, {} senders\n\n\
         demo (`cargo build --release --example chat`): `{}{}`; clients in {} process(es) of at most {}; setup {} s, settle {} s, \
         confirmation window {} s\n",
        plan.clients,
        plan.senders,
        plan.demo,
        plan.backlog
            .map_or(String::new(), |b| format!(" --backlog {b}")),
        plan.clients.div_ceil(plan.per_child),
        plan.per_child,
        plan.setup.as_secs(),
        plan.settle.as_secs(),
        plan.confirm.as_secs(),
    );
    let outcomes: Vec<Outcome> = scenarios.into_iter().map(|s| storm(&plan, s)).collect();
    println!("{}", Outcome::HEADER);
    for outcome in &outcomes {
        println!("{}", outcome.row());
    }
    println!();
    for outcome in &outcomes {
        for note in &outcome.notes {
            println!("- {}: {note}", outcome.scenario.name());
        }
    }
}

/// What one scenario measured; `None` where a phase did not get that far.
struct Outcome {
    scenario: Scenario,
    clients: usize,
    /// Clients connected before the storm, and how long they took.
    connected: u64,
    setup_secs: f64,
    /// From the kill or blip until the last client was back, if all came back.
    all_back: Option<Duration>,
    back: u64,
    /// From the kill or blip until every client was connected at the same time: a client
    /// that comes back and is closed again (as a slow consumer) is not settled.
    all_connected: Option<Duration>,
    /// Clients connected at once 30 s after the kill or blip (all, if they were earlier).
    connected_by_window: Option<u64>,
    resumed: u64,
    resets: u64,
    slow: u64,
    sent: usize,
    confirmed: u64,
    acked: u64,
    latencies_ms: Vec<f64>,
    /// CPU seconds the server, and the client processes, spent from the storm until the
    /// clients settled (or the settle deadline): on 2 cores they compete.
    server_cpu: f64,
    clients_cpu: f64,
    load: String,
    notes: Vec<String>,
}

impl Outcome {
    const HEADER: &str = "| scenario | clients | each back once | all connected at once | \
                          connected at 30 s | resumed | resets | slow_consumer closes | \
                          confirmed in 30 s | p50 | p99 | acked | CPU server / clients | load |\n\
                          |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|";

    fn row(&self) -> String {
        let percent = |n: u64| format!("{:.1} %", 100.0 * n as f64 / self.clients.max(1) as f64);
        let mut latencies = self.latencies_ms.clone();
        latencies.sort_by(f64::total_cmp);
        let percentile = |p: f64| -> String {
            if latencies.is_empty() {
                return "—".into();
            }
            let at = ((latencies.len() as f64 * p) as usize).min(latencies.len() - 1);
            format!("{:.0} ms", latencies[at])
        };
        format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {}/{} | {} | {} | {}/{} | {:.1} s / {:.1} s | {} |",
            self.scenario.name(),
            self.clients,
            self.all_back.map_or_else(
                || format!("— ({} back)", percent(self.back)),
                |d| format!("{:.1} s", d.as_secs_f64())
            ),
            self.all_connected
                .map_or_else(|| "—".into(), |d| format!("{:.1} s", d.as_secs_f64())),
            self.connected_by_window.map_or_else(|| "—".into(), percent),
            percent(self.resumed),
            self.resets,
            self.slow,
            self.confirmed,
            self.sent,
            percentile(0.50),
            percentile(0.99),
            self.acked,
            self.sent,
            self.server_cpu,
            self.clients_cpu,
            self.load,
        )
    }
}

/// Runs one scenario from a fresh server and fresh clients to the end, whatever happens.
fn storm(plan: &Plan, scenario: Scenario) -> Outcome {
    let tag = format!("[storm {} {}]", scenario.name(), plan.clients);
    let mut outcome = Outcome {
        scenario,
        clients: plan.clients,
        connected: 0,
        setup_secs: 0.0,
        all_back: None,
        back: 0,
        all_connected: None,
        connected_by_window: None,
        resumed: 0,
        resets: 0,
        slow: 0,
        sent: 0,
        confirmed: 0,
        acked: 0,
        latencies_ms: Vec::new(),
        server_cpu: 0.0,
        clients_cpu: 0.0,
        load: load_average(),
        notes: Vec::new(),
    };
    let port = free_port();
    let Some(mut server) = Demo::start(plan, port) else {
        outcome.notes.push("the demo did not start".into());
        return outcome;
    };
    // Through the proxy, each client process has a proxy of its own: a proxy holds two
    // sockets per client, and one process may hold no more files than the limit.
    let mut proxies = Vec::new();
    let url_ports = match scenario {
        Scenario::Kill => vec![port],
        Scenario::Blip => {
            let mut ports = Vec::new();
            for _ in 0..plan.clients.div_ceil(plan.per_child).max(1) {
                let mut child = Child::spawn(&[], &["storm-proxy".into(), port.to_string()]);
                let Some(ready) = child.try_line(Duration::from_secs(10)) else {
                    outcome.notes.push("the proxy did not start".into());
                    return outcome;
                };
                ports.push(ready.trim_start_matches("ready ").parse().expect("a port"));
                proxies.push(child);
            }
            ports
        }
    };
    let urls: Vec<String> = url_ports
        .iter()
        .map(|port| format!("http://127.0.0.1:{port}/omni"))
        .collect();

    // Setup: every client joins, a few thousand a second (not measured).
    let started = Instant::now();
    let mut fleet = Fleet::start(plan, &urls);
    let all = plan.clients as u64;
    let joined = fleet.wait(&tag, "connected", started + plan.setup, |t| {
        t.connected >= all
    });
    outcome.setup_secs = started.elapsed().as_secs_f64();
    outcome.connected = fleet.totals().connected;
    if !joined {
        outcome.notes.push(format!(
            "only {} of {all} connected within the {} s setup; the storm went ahead anyway",
            outcome.connected,
            plan.setup.as_secs()
        ));
    }
    eprintln!(
        "{tag} {} connected in {:.1} s",
        outcome.connected, outcome.setup_secs
    );
    // The presence broadcasts of the last joins are still on their way: let them land.
    fleet.pause(Duration::from_secs(2));
    server.drain_log();

    // The storm.
    fleet.mark();
    let mark = Instant::now();
    let mut cpu_before = cpu_seconds(server.child.pid());
    let clients_cpu_before = fleet.cpu_seconds();
    let overflows_before = listen_overflows();
    match scenario {
        Scenario::Kill => {
            server.child.kill();
            server = match Demo::start(plan, port) {
                Some(server) => server,
                None => {
                    outcome.notes.push("the demo did not restart".into());
                    fleet.finish();
                    return outcome;
                }
            };
            cpu_before = 0.0;
        }
        Scenario::Blip => {
            for proxy in &mut proxies {
                proxy.try_send("blip");
            }
            for proxy in &mut proxies {
                let blipped = proxy.try_line(Duration::from_secs(5)).unwrap_or_default();
                eprintln!("{tag} {blipped}");
            }
        }
    }
    let (mut all_connected, mut by_window) = (None, None);
    let settled = fleet.wait(&tag, "settled", mark + plan.settle, |t| {
        let since = mark.elapsed();
        let done = t.back >= all && t.connected >= all;
        if done {
            all_connected = Some(since);
        }
        if by_window.is_none() && (done || since >= WINDOW) {
            by_window = Some(if done { all } else { t.connected });
        }
        done
    });
    let totals = fleet.totals();
    outcome.server_cpu = cpu_seconds(server.child.pid()) - cpu_before;
    outcome.clients_cpu = fleet.cpu_seconds() - clients_cpu_before;
    if let (Some(before), Some(after)) = (overflows_before, listen_overflows()) {
        outcome.notes.push(format!(
            "{} connections dropped by full accept queues (TcpExt ListenOverflows, the whole \
             machine's)",
            after - before
        ));
    }
    outcome.all_connected = all_connected;
    outcome.connected_by_window = by_window;
    if totals.back >= all {
        outcome.all_back = Some(Duration::from_millis(totals.last_back_ms));
    }
    if !settled {
        outcome.notes.push(format!(
            "{} of {all} back and {} connected after {} s ({} dropped)",
            totals.back,
            totals.connected,
            plan.settle.as_secs(),
            totals.dropped
        ));
    }

    // The chat still works: senders spread over the population each send one message.
    let senders = fleet.send(plan.senders);
    outcome.sent = senders;
    let sent_at = Instant::now();
    let confirmed = fleet.wait(&tag, "confirmed", sent_at + plan.confirm, |t| {
        t.confirmed >= senders as u64
    });
    outcome.confirmed = fleet.totals().confirmed;
    if !confirmed {
        outcome.notes.push(format!(
            "{} of {senders} messages confirmed within {} s",
            outcome.confirmed,
            plan.confirm.as_secs()
        ));
    }
    let (latencies, acked) = fleet.report();
    outcome.latencies_ms = latencies;
    outcome.acked = acked;

    let totals = fleet.totals();
    outcome.back = totals.back;
    outcome.resumed = totals.resumed;
    outcome.resets = totals.resets;
    outcome.slow = totals.slow;
    if let Some(peak) = peak_rss_mb(server.child.pid()) {
        outcome.notes.push(format!(
            "server peak RSS {peak:.0} MB (VmHWM of the process serving at the end: after a \
             kill, the restarted one)"
        ));
    }
    let warned = server.drain_log();
    if warned.slow > 0 || warned.accept > 0 {
        outcome.notes.push(format!(
            "server log: {} slow-consumer closes, {} failed accepts",
            warned.slow, warned.accept
        ));
    }
    outcome.load = format!("{} → {}", outcome.load, load_average());
    fleet.finish();
    for proxy in proxies {
        proxy.finish(Duration::from_secs(5));
    }
    server.child.kill();
    outcome
}

/// The peak resident memory of process `pid` so far (`VmHWM`), in MB.
fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The chat demo as a child process.
struct Demo {
    child: Child,
}

/// What the server logged that the report names.
#[derive(Default)]
struct Warned {
    slow: u64,
    accept: u64,
}

impl Demo {
    /// Starts the demo on `port` and waits for it to listen.
    fn start(plan: &Plan, port: u16) -> Option<Demo> {
        let mut words = vec![plan.demo.clone(), "--port".into(), port.to_string()];
        if let Some(backlog) = plan.backlog {
            words.extend(["--backlog".into(), backlog.to_string()]);
        }
        let env = [("RUST_LOG", "warn"), ("NO_COLOR", "1")];
        let mut child = Child::program(&words, &env);
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Some(line) = child.try_line(deadline.saturating_duration_since(Instant::now())) {
            if line.contains("chat listening on") {
                return Some(Demo { child });
            }
        }
        None
    }

    /// Reads what the server logged so far.
    fn drain_log(&mut self) -> Warned {
        let mut warned = Warned::default();
        for line in self.child.ready_lines() {
            if line.contains("slow consumer") {
                warned.slow += 1;
            } else if line.contains("accept failed") {
                warned.accept += 1;
            }
        }
        warned
    }
}

/// The sums of the children's latest `status` lines.
#[derive(Clone, Copy, Default, Debug)]
struct Totals {
    connected: u64,
    dropped: u64,
    back: u64,
    back_in_window: u64,
    last_back_ms: u64,
    resumed: u64,
    resets: u64,
    slow: u64,
    confirmed: u64,
}

impl Totals {
    fn parse(line: &str) -> Option<Totals> {
        let rest = line.strip_prefix("status ")?;
        let mut totals = Totals::default();
        for pair in rest.split_whitespace() {
            let (key, value) = pair.split_once('=')?;
            let value: u64 = value.parse().ok()?;
            match key {
                "connected" => totals.connected = value,
                "dropped" => totals.dropped = value,
                "back" => totals.back = value,
                "back_in_window" => totals.back_in_window = value,
                "last_back_ms" => totals.last_back_ms = value,
                "resumed" => totals.resumed = value,
                "resets" => totals.resets = value,
                "slow" => totals.slow = value,
                "confirmed" => totals.confirmed = value,
                _ => {}
            }
        }
        Some(totals)
    }

    fn add(self, other: Totals) -> Totals {
        Totals {
            connected: self.connected + other.connected,
            dropped: self.dropped + other.dropped,
            back: self.back + other.back,
            back_in_window: self.back_in_window + other.back_in_window,
            last_back_ms: self.last_back_ms.max(other.last_back_ms),
            resumed: self.resumed + other.resumed,
            resets: self.resets + other.resets,
            slow: self.slow + other.slow,
            confirmed: self.confirmed + other.confirmed,
        }
    }
}

/// The client processes, their sizes and their latest counters.
struct Fleet {
    children: Vec<Member>,
}

struct Member {
    child: Child,
    size: usize,
    status: Totals,
    /// Lines other than `status`, kept for [`Fleet::report`].
    answers: Vec<String>,
}

impl Fleet {
    /// Starts the client processes, the `i`th on `urls[i % urls.len()]`.
    fn start(plan: &Plan, urls: &[String]) -> Fleet {
        let count = plan.clients.div_ceil(plan.per_child).max(1);
        let rate = (plan.connect_rate / count).max(1);
        let children = (0..count)
            .map(|i| {
                let size = plan.clients / count + usize::from(i < plan.clients % count);
                let args = [
                    "storm-clients".into(),
                    urls[i % urls.len()].clone(),
                    size.to_string(),
                    rate.to_string(),
                    plan.presence.clone(),
                ];
                Member {
                    child: Child::spawn(&[], &args),
                    size,
                    status: Totals::default(),
                    answers: Vec::new(),
                }
            })
            .collect();
        Fleet { children }
    }

    /// Reads every line the children printed so far.
    fn poll(&mut self) {
        for member in &mut self.children {
            for line in member.child.ready_lines() {
                match Totals::parse(&line) {
                    Some(status) => member.status = status,
                    None => member.answers.push(line),
                }
            }
        }
    }

    fn totals(&mut self) -> Totals {
        self.poll();
        self.children
            .iter()
            .fold(Totals::default(), |sum, m| sum.add(m.status))
    }

    /// Waits until `done` holds or `deadline` passes, saying how it goes every 5 s.
    fn wait(
        &mut self,
        tag: &str,
        what: &str,
        deadline: Instant,
        mut done: impl FnMut(&Totals) -> bool,
    ) -> bool {
        let started = Instant::now();
        let mut said = Instant::now();
        loop {
            let totals = self.totals();
            if done(&totals) {
                return true;
            }
            if Instant::now() >= deadline {
                eprintln!(
                    "{tag} {what}: gave up after {:?}: {totals:?}",
                    started.elapsed()
                );
                return false;
            }
            if said.elapsed() >= Duration::from_secs(5) {
                eprintln!(
                    "{tag} {what}: {:.0} s: {totals:?}",
                    started.elapsed().as_secs_f64()
                );
                said = Instant::now();
            }
            if let Some(gone) = self.children.iter_mut().position(|m| !m.child.running()) {
                eprintln!("{tag} client process {gone} exited");
                return false;
            }
            std::thread::sleep(POLL);
        }
    }

    fn pause(&mut self, time: Duration) {
        std::thread::sleep(time);
        self.poll();
    }

    /// Starts the count of drops and returns in every child, and waits (up to 5 s) until
    /// each has, so that no drop happens before its client's process counts it.
    /// CPU seconds all client processes have used so far.
    fn cpu_seconds(&self) -> f64 {
        self.children
            .iter()
            .map(|m| cpu_seconds(m.child.pid()))
            .sum()
    }

    fn mark(&mut self) {
        for member in &mut self.children {
            member.answers.clear();
            member.child.try_send("mark");
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            self.poll();
            if self
                .children
                .iter()
                .all(|m| m.answers.iter().any(|a| a == "marked"))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        eprintln!("not every client process answered `mark` within 5 s");
    }

    /// Tells `senders` clients spread evenly over the population to send; returns how many.
    fn send(&mut self, senders: usize) -> usize {
        let total: usize = self.children.iter().map(|m| m.size).sum();
        let senders = senders.min(total);
        let mut chosen: Vec<Vec<String>> = vec![Vec::new(); self.children.len()];
        for i in 0..senders {
            let mut index = i * total / senders;
            for (member, chosen) in self.children.iter().zip(&mut chosen) {
                if index < member.size {
                    chosen.push(index.to_string());
                    break;
                }
                index -= member.size;
            }
        }
        for (member, chosen) in self.children.iter_mut().zip(chosen) {
            member.child.try_send(&format!("send {}", chosen.join(",")));
        }
        senders
    }

    /// Every child's confirmation latencies (ms) and acknowledged senders; what arrives in 10 s.
    fn report(&mut self) -> (Vec<f64>, u64) {
        for member in &mut self.children {
            member.answers.clear();
            member.child.try_send("report");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            self.poll();
            let answered = self.children.iter().all(|m| {
                m.answers.iter().any(|a| a.starts_with("acked "))
                    && m.answers.iter().any(|a| a.starts_with("latencies"))
            });
            if answered {
                break;
            }
            std::thread::sleep(POLL);
        }
        let (mut latencies, mut acked) = (Vec::new(), 0);
        for answer in self.children.iter().flat_map(|m| &m.answers) {
            if let Some(list) = answer.strip_prefix("latencies") {
                latencies.extend(
                    list.trim()
                        .split(',')
                        .filter_map(|us| us.parse::<f64>().ok())
                        .map(|us| us / 1000.0),
                );
            } else if let Some(n) = answer.strip_prefix("acked ") {
                acked += n.parse::<u64>().unwrap_or(0);
            }
        }
        (latencies, acked)
    }

    fn finish(self) {
        for member in self.children {
            member.child.finish(Duration::from_secs(10));
        }
    }
}

/// A port nothing listens on now, for the demo to take (and to take again after a kill).
fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    probe.local_addr().unwrap().port()
}

/// User and system CPU time of process `pid` so far, from `/proc/PID/stat` (at 100 ticks a
/// second).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the parenthesised name; utime and stime are the 14th and 15th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    match fields.get(11..13) {
        Some([user, system]) => (user + system) as f64 / 100.0,
        _ => 0.0,
    }
}

/// How many connections the kernel has dropped because a listener's accept queue was full
/// (the backlog), from `/proc/net/netstat`.
fn listen_overflows() -> Option<u64> {
    let netstat = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut tcp_ext = netstat.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (tcp_ext.next()?, tcp_ext.next()?);
    let at = names
        .split_whitespace()
        .position(|name| name == "ListenOverflows")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

/// The one-minute load average: how busy the shared machine was.
fn load_average() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    load.split_whitespace().next().unwrap_or("?").to_string()
}

/// Each client holds one descriptor, the server one per client, each proxy two per client of
/// its client process: all must fit under the soft limit, which children inherit.
fn check_file_limit(plan: &Plan) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(usize::MAX);
    // Room for the runtime, pipes and sockets in flight.
    let spare = 500;
    let needs = [
        (
            "each client process",
            plan.per_child.min(plan.clients) + spare,
        ),
        ("the demo", plan.clients + spare),
        (
            "the proxy",
            if plan.blip {
                2 * plan.per_child.min(plan.clients) + spare
            } else {
                0
            },
        ),
    ];
    for (who, fds) in needs {
        if fds > soft {
            eprintln!(
                "{who} needs about {fds} open files; the limit is {soft} (`ulimit -n`): \
                 raise it, or lower --clients / --per-child"
            );
            std::process::exit(2);
        }
    }
}
