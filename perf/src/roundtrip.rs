//! Round trips, server and load client in separate processes, pinned to one core each and
//! free, `--runs` times with the targets interleaved within every run.

use std::collections::HashMap;
use std::time::Duration;

use crate::child::Child;
use crate::load::Stats;
use crate::{Options, RATIOS, Target, median};

pub fn run(options: &Options) {
    let runs = options.get("runs", 9) as usize;
    let connections = options.get("connections", 50);
    let trips = options.get("trips", 400);
    let warmup = options.get("warmup", 50);
    let modes = options.text("modes", "pinned,free");
    let targets = Target::list(options);

    for mode in modes.split(',') {
        let pinned = match mode {
            "pinned" => true,
            "free" => false,
            other => panic!("--modes takes pinned and free, not {other}"),
        };
        let mut results: HashMap<Target, Vec<Stats>> = HashMap::new();
        for run in 0..runs {
            // Interleaved: a burst of noise on the machine hits every target in some run, and
            // rotating the order keeps any one target from always going first.
            for i in 0..targets.len() {
                let target = targets[(run + i) % targets.len()];
                let stats = once(target, pinned, connections, trips, warmup);
                eprintln!(
                    "  {mode} run {}/{runs} {:<9} {:>8.0}/s p50 {:>6.0} µs p99 {:>6.0} µs",
                    run + 1,
                    target.name(),
                    stats.throughput,
                    stats.p50_us,
                    stats.p99_us
                );
                results.entry(target).or_default().push(stats);
            }
        }
        report(mode, runs, connections, trips, &targets, &results);
    }
}

/// One server process, one load process, one measurement.
pub fn once(target: Target, pinned: bool, connections: u64, trips: u64, warmup: u64) -> Stats {
    let taskset = |cpu: &str| -> Vec<String> {
        if pinned {
            vec!["taskset".into(), "-c".into(), cpu.into()]
        } else {
            Vec::new()
        }
    };
    let mut server = Child::spawn(&taskset("0"), &["serve".into(), target.server().into()]);
    let addr = server.expect("listening", Duration::from_secs(10));
    let stats = load(&taskset("1"), target, &addr, connections, trips, warmup);
    server.finish(Duration::from_secs(5));
    stats
}

/// Runs a load client process against `addr` and reads its result.
pub fn load(
    prefix: &[String],
    target: Target,
    addr: &str,
    connections: u64,
    trips: u64,
    warmup: u64,
) -> Stats {
    let url = format!("ws://{addr}{}", target.path());
    let mut client = Child::spawn(
        prefix,
        &[
            "load".into(),
            target.name().into(),
            url,
            connections.to_string(),
            trips.to_string(),
            warmup.to_string(),
        ],
    );
    // Generous, for the same load against a server under callgrind.
    let stats = Stats::parse(&client.expect("result", Duration::from_secs(300)));
    client.finish(Duration::from_secs(5));
    stats
}

fn report(
    mode: &str,
    runs: usize,
    connections: u64,
    trips: u64,
    targets: &[Target],
    results: &HashMap<Target, Vec<Stats>>,
) {
    let how = if mode == "pinned" {
        "pinned: server `taskset -c 0`, client `taskset -c 1`"
    } else {
        "free: no pinning, both processes on both cores"
    };
    println!(
        "## Round trips, {how}\n\n{connections} connections × {trips} round trips, \
         median of {runs} interleaved runs (min–max in brackets)\n\n\
         | server | round trips/s | p50 | p99 |\n|---|---|---|---|"
    );
    let spread = |xs: &[f64], digits: usize| -> String {
        let (lo, hi) = xs
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        format!(
            "{:.digits$} ({lo:.digits$}–{hi:.digits$})",
            median(xs),
            digits = digits
        )
    };
    for &target in targets {
        let stats = &results[&target];
        let pick = |f: fn(&Stats) -> f64| stats.iter().map(f).collect::<Vec<_>>();
        println!(
            "| {} | {} | {} µs | {} µs |",
            target.name(),
            spread(&pick(|s| s.throughput), 0),
            spread(&pick(|s| s.p50_us), 0),
            spread(&pick(|s| s.p99_us), 0),
        );
    }
    println!(
        "\n| ratio of throughputs | ratio of medians | per-run ratios, median (min–max) |\n|---|---|---|"
    );
    for (a, b) in RATIOS {
        if !(targets.contains(&a) && targets.contains(&b)) {
            continue;
        }
        let throughputs =
            |t: Target| -> Vec<f64> { results[&t].iter().map(|s| s.throughput).collect() };
        let (xs, ys) = (throughputs(a), throughputs(b));
        // Runs pair up: both targets were measured within the same run, minutes apart at most.
        let per_run: Vec<f64> = xs.iter().zip(&ys).map(|(x, y)| x / y).collect();
        println!(
            "| {}/{} | {:.2} | {} |",
            a.name(),
            b.name(),
            median(&xs) / median(&ys),
            spread(&per_run, 2)
        );
    }
    println!();
}
