//! rtt: the OCI runtime conformance suite.
//!
//! Every case is named after the requirement of the runtime spec it
//! checks. The same cases run against each runtime given; the result is a
//! table with a column per runtime and a summary line per runtime.
//!
//! ```text
//! rtt --runtime PATH [--runtime PATH...] [--reference PATH]
//!     [--known-gaps docs/CONFORMANCE.md] [--probe PATH] [--busybox PATH]
//!     [--work DIR] [--list] [-v] [FILTER...]
//! ```
//!
//! A case fails the exit status when it fails against a `--runtime` and is
//! not listed for that runtime in the known-gaps table; `--reference`
//! runtimes only add a column.

mod bundle;
mod cases;
mod gaps;
mod host;
mod suite;

use std::path::PathBuf;
use std::process::ExitCode;

use suite::{Outcome, Runtime, Suite};

struct Args {
    runtimes: Vec<(PathBuf, bool)>,
    known_gaps: Option<PathBuf>,
    probe: PathBuf,
    busybox: PathBuf,
    work: PathBuf,
    list: bool,
    verbose: bool,
    filters: Vec<String>,
}

const USAGE: &str = "usage: rtt --runtime PATH [--reference PATH] [--known-gaps FILE] \
[--probe PATH] [--busybox PATH] [--work DIR] [--list] [-v] [FILTER...]";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        runtimes: vec![],
        known_gaps: None,
        probe: PathBuf::from("target/release/rtt-probe"),
        busybox: PathBuf::from("/bin/busybox"),
        // One directory per run, so runs side by side do not collide.
        work: PathBuf::from(format!("/run/rtt-{}", std::process::id())),
        list: false,
        verbose: false,
        filters: vec![],
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--runtime" => a.runtimes.push((PathBuf::from(value()?), false)),
            "--reference" => a.runtimes.push((PathBuf::from(value()?), true)),
            "--known-gaps" => a.known_gaps = Some(PathBuf::from(value()?)),
            "--probe" => a.probe = PathBuf::from(value()?),
            "--busybox" => a.busybox = PathBuf::from(value()?),
            "--work" => a.work = PathBuf::from(value()?),
            "--list" => a.list = true,
            "-v" | "--verbose" => a.verbose = true,
            "-h" | "--help" => return Err(USAGE.to_string()),
            f if f.starts_with('-') => return Err(format!("unknown flag {f}\n{USAGE}")),
            f => a.filters.push(f.to_string()),
        }
    }
    if a.runtimes.is_empty() && !a.list {
        return Err(USAGE.to_string());
    }
    Ok(a)
}

/// What one case did against one runtime, as the table shows it.
#[derive(Clone, Copy, PartialEq)]
enum Cell {
    Pass,
    Fail,
    Gap,
    Skip,
}

impl Cell {
    fn word(self) -> &'static str {
        match self {
            Cell::Pass => "pass",
            Cell::Fail => "FAIL",
            Cell::Gap => "gap",
            Cell::Skip => "skip",
        }
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let all = cases::all();
    let selected: Vec<&cases::Case> = all
        .iter()
        .filter(|c| args.filters.is_empty() || args.filters.iter().any(|f| c.name.contains(f)))
        .collect();
    if args.list {
        for c in &selected {
            println!("{}", c.name);
        }
        return ExitCode::SUCCESS;
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("rtt: the cases run containers and need root");
        return ExitCode::from(2);
    }
    let gaps = match &args.known_gaps {
        Some(p) => match gaps::read(p) {
            Ok(g) => g,
            Err(e) => {
                eprintln!("rtt: {}: {e}", p.display());
                return ExitCode::from(2);
            }
        },
        None => vec![],
    };
    let suite = match Suite::new(&args.work, &args.probe, &args.busybox) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rtt: {e}");
            return ExitCode::from(2);
        }
    };

    let mut columns = vec![];
    let mut failed_hard = false;
    for (path, reference) in &args.runtimes {
        let rt = match Runtime::new(path, &suite) {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("rtt: {e}");
                return ExitCode::from(2);
            }
        };
        eprintln!("== {} ({})", rt.name, path.display());
        let mut cells = vec![];
        let (mut pass, mut fail, mut skip, mut gap) = (0, 0, 0, 0);
        for case in &selected {
            let outcome = suite.run_case(&rt, case);
            let known = gaps::find(&gaps, &rt.name, &case.name);
            let cell = match (&outcome, known) {
                (Outcome::Pass, _) => Cell::Pass,
                (Outcome::Skip(_), _) => Cell::Skip,
                (Outcome::Fail(_), Some(_)) => Cell::Gap,
                (Outcome::Fail(_), None) => Cell::Fail,
            };
            match cell {
                Cell::Pass => pass += 1,
                Cell::Skip => skip += 1,
                Cell::Gap => {
                    fail += 1;
                    gap += 1
                }
                Cell::Fail => fail += 1,
            }
            if cell == Cell::Fail && !reference {
                failed_hard = true;
            }
            let detail = match &outcome {
                Outcome::Pass if known.is_some() => " (listed as a known gap)".to_string(),
                Outcome::Pass => String::new(),
                Outcome::Skip(why) => format!(": {why}"),
                Outcome::Fail(why) => format!(":\n    {}", why.replace('\n', "\n    ")),
            };
            if args.verbose || !matches!(outcome, Outcome::Pass) || known.is_some() {
                eprintln!("{} {}{detail}", cell.word(), case.name);
            }
            cells.push(cell);
        }
        let summary = format!("{pass} passed, {fail} failed, {skip} skipped");
        let gaps_note = if gap > 0 {
            format!(" ({gap} of them known gaps)")
        } else {
            String::new()
        };
        columns.push((rt.name.clone(), cells, format!("{summary}{gaps_note}")));
    }

    print_table(&selected, &columns);
    drop(suite);
    if args
        .work
        .starts_with(format!("/run/rtt-{}", std::process::id()))
    {
        let _ = std::fs::remove_dir_all(&args.work);
    }
    if failed_hard {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn print_table(cases: &[&cases::Case], columns: &[(String, Vec<Cell>, String)]) {
    let mut header = "| case |".to_string();
    let mut rule = "| --- |".to_string();
    for (name, _, _) in columns {
        header += &format!(" {name} |");
        rule += " --- |";
    }
    println!("{header}\n{rule}");
    for (i, c) in cases.iter().enumerate() {
        let mut row = format!("| {} |", c.name);
        for (_, cells, _) in columns {
            row += &format!(" {} |", cells[i].word());
        }
        println!("{row}");
    }
    println!();
    for (name, _, summary) in columns {
        println!("{name}: {summary}");
    }
}
