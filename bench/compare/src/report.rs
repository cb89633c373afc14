//! The results: one row per comparison, written as JSON and as a markdown table.

use std::path::Path;

use serde_json::{Value, json};

use crate::plots::{self, Distribution};

/// One comparison: what was measured on each side, and the ratio against its target.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub comparison: String,
    pub metric: String,
    pub taskyard: f64,
    pub peer: f64,
    pub peer_name: String,
    /// taskyard / peer, or peer / taskyard where lower is better.
    pub ratio: f64,
    pub target: String,
    pub met: bool,
    pub unit: String,
}

impl Row {
    /// A row of a `results.json`.
    pub fn from_json(row: &Value) -> Option<Row> {
        Some(Row {
            comparison: row["comparison"].as_str()?.to_owned(),
            metric: row["metric"].as_str()?.to_owned(),
            taskyard: row["taskyard"].as_f64()?,
            peer: row["peer_value"].as_f64()?,
            peer_name: row["peer"].as_str()?.to_owned(),
            ratio: row["ratio"].as_f64()?,
            target: row["target"].as_str()?.to_owned(),
            met: row["met"].as_bool()?,
            unit: row["unit"].as_str()?.to_owned(),
        })
    }

    fn json(&self) -> Value {
        json!({
            "comparison": self.comparison,
            "metric": self.metric,
            "unit": self.unit,
            "taskyard": self.taskyard,
            "peer": self.peer_name,
            "peer_value": self.peer,
            "ratio": self.ratio,
            "target": self.target,
            "met": self.met,
        })
    }
}

pub fn markdown(rows: &[Row]) -> String {
    let mut text = String::from(
        "| comparison | metric | taskyard | peer | ratio | target | met |\n|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        text.push_str(&format!(
            "| {} | {} | {} {} | {}: {} {} | {:.2}× | {} | {} |\n",
            row.comparison,
            row.metric,
            format_value(row.taskyard),
            row.unit,
            row.peer_name,
            format_value(row.peer),
            row.unit,
            row.ratio,
            row.target,
            if row.met { "yes" } else { "**no**" },
        ));
    }
    text
}

fn format_value(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

/// Writes `results.json`, `results.md` and the plots into `dir`.
pub fn write(dir: &Path, rows: &[Row], charts: &[Distribution]) {
    if let Err(error) = std::fs::create_dir_all(dir) {
        eprintln!("taskyard-bench: cannot create {}: {error}", dir.display());
        return;
    }
    let plots = plots::draw(dir, charts, rows);
    let json = json!({
        "machine": machine(),
        "rows": rows.iter().map(Row::json).collect::<Vec<_>>(),
        "distributions": charts.iter().map(|chart| json!({
            "plot": format!("{}.png", chart.file),
            "title": chart.title,
            "unit": chart.unit,
            "curves": chart.curves.iter().map(|curve| json!({
                "name": curve.name,
                "percentiles": curve.points,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    let text = serde_json::to_string_pretty(&json).unwrap_or_default();
    let mut table = markdown(rows);
    for plot in &plots {
        table.push_str(&format!("\n![{plot}]({plot})\n"));
    }
    for (name, body) in [("results.json", text), ("results.md", table)] {
        let path = dir.join(name);
        if let Err(error) = std::fs::write(&path, body) {
            eprintln!("taskyard-bench: cannot write {}: {error}", path.display());
        }
    }
}

/// What the numbers were measured on.
fn machine() -> Value {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, name)| name.trim().to_owned())
        })
        .unwrap_or_default();
    json!({ "cores": cores, "cpu": cpu })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_read_back_from_their_json() {
        let row = Row {
            comparison: "task run over HTTP".into(),
            metric: "requests/s".into(),
            taskyard: 28_570.0,
            peer: 23_517.0,
            peer_name: "Nitro node-server".into(),
            ratio: 1.21,
            target: "≥ 10×".into(),
            met: false,
            unit: "req/s".into(),
        };
        assert_eq!(Row::from_json(&row.json()), Some(row));
        assert_eq!(Row::from_json(&json!({"comparison": "x"})), None);
    }
}
