//! Commands that report on containers: ps, logs, top, stats.

use anyhow::{bail, Result};
use libimage::store::ContainerRecord;
use serde_json::{json, Value};

use crate::ctx::{Ctx, Status};
use crate::table::{ago, duration_words, human_binary, now, parse_time, table};

fn status_text(ctx: &Ctx, id: &str, status: &Status) -> String {
    let since = |t: Option<String>| {
        t.and_then(|t| parse_time(&t))
            .map(|t| duration_words(now() - t))
            .unwrap_or_else(|| "a while".into())
    };
    match status {
        Status::Created => "Created".into(),
        Status::Running => format!("Up {}", since(ctx.monitor_info(id).map(|m| m.started_at))),
        Status::Paused => format!(
            "Up {} (Paused)",
            since(ctx.monitor_info(id).map(|m| m.started_at))
        ),
        Status::Exited(code) => {
            let code = code.map_or("unknown".to_string(), |c| c.to_string());
            match ctx.exit(id) {
                Some(e) => format!("Exited ({code}) {}", ago(&e.finished_at)),
                None => format!("Exited ({code})"),
            }
        }
    }
}

fn row(ctx: &Ctx, rec: &ContainerRecord) -> Value {
    let meta = Ctx::meta(rec);
    let status = ctx.status(&rec.id);
    let mut command = meta.args.join(" ");
    if command.chars().count() > 20 {
        command = format!("{}…", command.chars().take(19).collect::<String>());
    }
    json!({
        "ID": rec.id[..12].to_string(),
        "FullID": rec.id,
        "Image": meta.image_name,
        "Command": format!("\"{command}\""),
        "Created": ago(&rec.created),
        "CreatedAt": rec.created,
        "Status": status_text(ctx, &rec.id, &status),
        "State": status.word(),
        "ExitCode": match status { Status::Exited(c) => json!(c), _ => Value::Null },
        "Names": rec.names.join(","),
        "Pid": ctx.init_pid(&rec.id).unwrap_or(0),
    })
}

/// Fills a `{{.Field}}` template from `row`.
fn render(template: &str, row: &Value) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            break;
        };
        let field = rest[start + 2..start + end].trim().trim_start_matches('.');
        match &row[field] {
            Value::String(s) => out.push_str(s),
            Value::Null => {}
            v => out.push_str(&v.to_string()),
        }
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out.replace("\\t", "\t").replace("\\n", "\n")
}

pub fn ps(ctx: &Ctx, all: bool, quiet: bool, format: Option<&str>) -> Result<()> {
    let mut recs = ctx.store.containers()?;
    recs.sort_by(|a, b| b.created.cmp(&a.created));
    let rows: Vec<Value> = recs
        .iter()
        .map(|r| row(ctx, r))
        .filter(|r| all || r["State"] == "running" || r["State"] == "paused")
        .collect();
    if quiet {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or_default());
        }
        return Ok(());
    }
    match format {
        Some("json") => println!("{}", serde_json::to_string_pretty(&rows)?),
        Some(t) if t.starts_with("table ") => {
            let t = &t["table ".len()..];
            let header: serde_json::Map<String, Value> = t
                .split("{{")
                .skip(1)
                .filter_map(|f| f.split_once("}}"))
                .map(|(f, _)| f.trim().trim_start_matches('.'))
                .map(|f| (f.to_string(), json!(f.to_uppercase())))
                .collect();
            println!("{}", render(t, &Value::Object(header)));
            for r in &rows {
                println!("{}", render(t, r));
            }
        }
        Some(t) if t != "table" => {
            for r in &rows {
                println!("{}", render(t, r));
            }
        }
        _ => {
            let cols = ["ID", "Image", "Command", "Created", "Status", "Names"];
            let mut table_rows = vec![[
                "CONTAINER ID",
                "IMAGE",
                "COMMAND",
                "CREATED",
                "STATUS",
                "NAMES",
            ]
            .map(String::from)
            .to_vec()];
            for r in &rows {
                table_rows.push(
                    cols.iter()
                        .map(|c| r[c].as_str().unwrap_or_default().to_string())
                        .collect(),
                );
            }
            print!("{}", table(&table_rows));
        }
    }
    Ok(())
}

pub fn logs(
    ctx: &Ctx,
    query: &str,
    follow: bool,
    timestamps: bool,
    tail: Option<usize>,
) -> Result<()> {
    let rec = ctx.container(query)?;
    let id = rec.id.clone();
    let path = ctx.file(&id, "ctr.log");
    crate::logs::show(&path, timestamps, follow, tail, || {
        matches!(
            ctx.status(&id),
            Status::Running | Status::Paused | Status::Created
        ) && ctx.store.container(&id).is_ok()
    })
}

pub fn top(ctx: &Ctx, query: &str, ps_args: &[String]) -> Result<()> {
    let rec = ctx.container(query)?;
    if !ctx.status(&rec.id).is_live() {
        bail!("container {query} is not running");
    }
    let pids = ctx.rt.pids(&rec.id)?;
    print!("{}", libcontainer::ps::table(&pids, ps_args)?);
    Ok(())
}

fn cpu_total(s: &Value) -> u64 {
    s["cpu"]["usage"]["total"].as_u64().unwrap_or(0)
}

pub fn stats(ctx: &Ctx, queries: &[String], json_out: bool) -> Result<()> {
    let recs: Vec<ContainerRecord> = if queries.is_empty() {
        ctx.store
            .containers()?
            .into_iter()
            .filter(|r| ctx.status(&r.id).is_live())
            .collect()
    } else {
        queries
            .iter()
            .map(|q| ctx.container(q))
            .collect::<Result<_>>()?
    };
    let interval = std::time::Duration::from_millis(500);
    let first: Vec<Value> = recs
        .iter()
        .map(|r| ctx.rt.stats(&r.id).map(|s| s.0).unwrap_or_default())
        .collect();
    std::thread::sleep(interval);
    let mut rows = vec![
        ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "PIDS"]
            .map(String::from)
            .to_vec(),
    ];
    let mut out = Vec::new();
    for (r, before) in recs.iter().zip(&first) {
        let s = match ctx.rt.stats(&r.id) {
            Ok(s) => s.0,
            Err(_) if !queries.is_empty() => bail!("container {} is not running", r.names[0]),
            Err(_) => continue,
        };
        let cpu = (cpu_total(&s).saturating_sub(cpu_total(before))) as f64
            / interval.as_nanos() as f64
            * 100.0;
        let mem = s["memory"]["usage"]["usage"].as_u64().unwrap_or(0);
        let limit = s["memory"]["usage"]["limit"].as_u64().unwrap_or(0);
        let pids = s["pids"]["current"].as_u64().unwrap_or(0);
        out.push(json!({"id": r.id, "name": r.names[0], "cpu_percent": cpu, "memory": mem, "memory_limit": limit, "pids": pids, "stats": s}));
        let limit = if limit >= 1 << 62 {
            "unlimited".into()
        } else {
            human_binary(limit)
        };
        rows.push(vec![
            r.id[..12].to_string(),
            r.names[0].clone(),
            format!("{cpu:.2}%"),
            format!("{} / {limit}", human_binary(mem)),
            pids.to_string(),
        ]);
    }
    if json_out {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", table(&rows));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        let row = json!({"ID": "abc", "Names": "web", "ExitCode": 3, "Pid": null});
        assert_eq!(render("{{.ID}} {{ .Names }}", &row), "abc web");
        assert_eq!(render("{{.ExitCode}}\\t{{.Pid}}|", &row), "3\t|");
        assert_eq!(render("plain", &row), "plain");
        assert_eq!(render("{{.Names}}", &json!({"Names": "NAMES"})), "NAMES");
    }
}
