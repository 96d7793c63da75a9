//! Instructions per round trip, counted by callgrind: a number the machine's noise does not
//! move. Each server runs under `valgrind --tool=callgrind` twice, driven once with K round
//! trips and once with 2K over the same connections and warm-up; the difference of the two
//! totals divided by K is what one more round trip costs the server, with start-up,
//! connection set-up, warm-up and shutdown cancelled out.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::child::Child;
use crate::{Options, RATIOS, Target, median};

pub fn run(options: &Options) {
    let connections = options.get("connections", 50);
    let trips = options.get("callgrind-trips", 200);
    let warmup = options.get("callgrind-warmup", 20);
    let repeats = options.get("repeats", 3) as usize;
    let targets = Target::list(options);
    let dir = profile_dir();
    std::fs::create_dir_all(&dir).expect("a directory for the profiles");

    let k = connections * trips;
    let mut rows = Vec::new();
    for target in targets {
        let mut per_trip = Vec::new();
        let mut totals = Vec::new();
        for repeat in 0..repeats {
            let once = profile(&dir, target, repeat, connections, trips, warmup);
            let twice = profile(&dir, target, repeat, connections, 2 * trips, warmup);
            let cost = (twice as f64 - once as f64) / k as f64;
            eprintln!(
                "  callgrind {:<9} I(K) {once} I(2K) {twice} → {cost:.0} per round trip",
                target.name()
            );
            per_trip.push(cost);
            totals.push((once, twice));
        }
        rows.push((target, median(&per_trip), per_trip, totals));
    }

    println!(
        "## Server instructions per round trip (callgrind)\n\n\
         Each server under `valgrind --tool=callgrind`, driven with K = {connections} \
         connections × {trips} round trips and with 2K ({connections} × {}), both after \
         {warmup} warm-up round trips per connection; (I(2K) − I(K)) / K, median of \
         {repeats}. Profiles in `{}`.\n\n\
         | server | instructions per round trip | each repeat | I(K), I(2K) of the first |\n\
         |---|---|---|---|",
        2 * trips,
        dir.display()
    );
    for (target, cost, per_trip, totals) in &rows {
        let each: Vec<String> = per_trip.iter().map(|c| format!("{c:.0}")).collect();
        println!(
            "| {} | {cost:.0} | {} | {}, {} |",
            target.name(),
            each.join(", "),
            totals[0].0,
            totals[0].1
        );
    }
    let cost = |t: Target| rows.iter().find(|r| r.0 == t).map(|r| r.1);
    println!("\n| ratio of instructions per round trip | |\n|---|---|");
    for (a, b) in RATIOS {
        if let (Some(x), Some(y)) = (cost(a), cost(b)) {
            println!("| {}/{} | {:.2} |", a.name(), b.name(), x / y);
        }
    }
    println!();
}

/// Runs `target`'s server under callgrind for one load; returns its total instructions.
fn profile(
    dir: &Path,
    target: Target,
    repeat: usize,
    connections: u64,
    trips: u64,
    warmup: u64,
) -> u64 {
    let out = dir.join(format!("{}-{trips}-{repeat}.out", target.name()));
    let _ = std::fs::remove_file(&out);
    let valgrind = [
        "valgrind".to_string(),
        "--tool=callgrind".into(),
        "--quiet".into(),
        format!("--callgrind-out-file={}", out.display()),
    ];
    let mut server = Child::spawn(&valgrind, &["serve".into(), target.server().into()]);
    // valgrind reads the binary's debug info first: seconds, not milliseconds.
    let addr = server.expect("listening", Duration::from_secs(120));
    crate::roundtrip::load(&[], target, &addr, connections, trips, warmup);
    let status = server.finish(Duration::from_secs(120));
    assert!(
        status.success(),
        "{} under callgrind: {status}",
        target.name()
    );
    total_instructions(&out)
}

/// The `totals:` (or `summary:`) line of a callgrind profile: instructions executed, with
/// the default `--collect-atstart=yes`, over the whole run and every thread.
fn total_instructions(profile: &Path) -> u64 {
    let text = std::fs::read_to_string(profile)
        .unwrap_or_else(|e| panic!("no profile at {}: {e}", profile.display()));
    text.lines()
        .find_map(|line| {
            line.strip_prefix("totals:")
                .or_else(|| line.strip_prefix("summary:"))
        })
        .and_then(|counts| counts.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no totals in {}", profile.display()))
}

/// `perf/target/callgrind`, beside the binary's own target directory.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the path of this binary");
    exe.parent().and_then(Path::parent).map_or_else(
        || PathBuf::from("callgrind"),
        |target| target.join("callgrind"),
    )
}
