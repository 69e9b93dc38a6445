//! Collects figures and writes `target/bench/report.md`, `results.json` and the PNG plots.

use std::{collections::BTreeMap, fmt::Write as _, path::Path};

use plotters::prelude::*;
use serde_json::{Value, json};

/// One reported figure, with its target and, where there is one, the baseline from the same run.
pub struct Row {
    pub section: &'static str,
    pub metric: String,
    pub target: String,
    pub ours: f64,
    pub unit: &'static str,
    pub baseline: Option<(String, f64)>,
}

#[derive(Default)]
pub struct Report {
    pub rows: Vec<Row>,
    /// Plot series: plot name → series name → (x, y).
    pub series: BTreeMap<String, BTreeMap<String, Vec<(f64, f64)>>>,
    pub notes: Vec<String>,
}

impl Report {
    pub fn row(
        &mut self,
        section: &'static str,
        metric: impl Into<String>,
        target: impl Into<String>,
        ours: f64,
        unit: &'static str,
        baseline: Option<(&str, f64)>,
    ) {
        self.rows.push(Row {
            section,
            metric: metric.into(),
            target: target.into(),
            ours,
            unit,
            baseline: baseline.map(|(n, v)| (n.to_string(), v)),
        });
    }

    pub fn point(&mut self, plot: &str, series: &str, x: f64, y: f64) {
        self.series
            .entry(plot.into())
            .or_default()
            .entry(series.into())
            .or_default()
            .push((x, y));
    }

    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    fn fmt(value: f64) -> String {
        if !value.is_finite() {
            "–".into()
        } else if value.abs() >= 100.0 {
            format!("{value:.0}")
        } else if value.abs() >= 1.0 {
            format!("{value:.2}")
        } else {
            format!("{value:.3}")
        }
    }

    /// The summary table (markdown).
    pub fn table(&self) -> String {
        let mut out = String::from(
            "| section | metric | target | ours | baseline (same run) | ratio ours/baseline |\n|---|---|---|---:|---|---:|\n",
        );
        for r in &self.rows {
            let (baseline, ratio) = match &r.baseline {
                Some((name, v)) => (
                    format!("{name}: {} {}", Self::fmt(*v), r.unit),
                    Self::fmt(r.ours / v),
                ),
                None => ("–".into(), "–".into()),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} {} | {} | {} |",
                r.section,
                r.metric,
                r.target,
                Self::fmt(r.ours),
                r.unit,
                baseline,
                ratio
            );
        }
        out
    }

    pub fn write(&self, dir: &Path, header: &str) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut md = format!("{header}\n\n## Summary\n\n{}\n", self.table());
        if !self.notes.is_empty() {
            md.push_str("\n## Notes\n\n");
            for n in &self.notes {
                let _ = writeln!(md, "- {n}");
            }
        }
        md.push_str("\n## Plots\n\n");
        for plot in self.series.keys() {
            let _ = writeln!(md, "![{plot}]({}.png)", slug(plot));
        }
        std::fs::write(dir.join("report.md"), md)?;
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                json!({"section": r.section, "metric": r.metric, "target": r.target, "ours": r.ours, "unit": r.unit,
                       "baseline": r.baseline.as_ref().map(|(n, v)| json!({"name": n, "value": v})),
                       "ratio": r.baseline.as_ref().map(|(_, v)| r.ours / v)})
            })
            .collect();
        let series = &self.series;
        std::fs::write(
            dir.join("results.json"),
            serde_json::to_string_pretty(
                &json!({"rows": rows, "series": series, "notes": self.notes}),
            )?,
        )?;
        for (plot, series) in &self.series {
            self.plot(&dir.join(format!("{}.png", slug(plot))), plot, series)?;
        }
        Ok(())
    }

    /// A line plot, log-x when x spans decades (rule counts), y in the row's unit.
    fn plot(
        &self,
        path: &Path,
        title: &str,
        series: &BTreeMap<String, Vec<(f64, f64)>>,
    ) -> anyhow::Result<()> {
        let points = series.values().flatten();
        let (xmin, xmax) = points.clone().fold((f64::MAX, f64::MIN), |(a, b), (x, _)| {
            (a.min(*x), b.max(*x))
        });
        let ymax = points.fold(0f64, |m, (_, y)| m.max(*y)) * 1.15;
        let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let colors = [
            RGBColor(214, 39, 40),
            RGBColor(31, 119, 180),
            RGBColor(44, 160, 44),
            RGBColor(148, 103, 189),
            RGBColor(23, 190, 207),
            RGBColor(0, 0, 0),
            RGBColor(255, 127, 14),
            RGBColor(140, 86, 75),
            RGBColor(227, 119, 194),
            RGBColor(127, 127, 127),
        ];
        let log = xmax / xmin.max(1e-9) > 50.0;
        let mut builder = ChartBuilder::on(&root);
        let chart = builder
            .caption(title, ("sans-serif", 24))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70);
        if log {
            let mut c =
                chart.build_cartesian_2d((xmin..xmax * 1.5).log_scale(), 0f64..ymax.max(1.0))?;
            c.configure_mesh().x_desc("rules").y_desc(title).draw()?;
            for (i, (name, pts)) in series.iter().enumerate() {
                let color = colors[i % colors.len()];
                c.draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
                    .label(name)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
                c.draw_series(pts.iter().map(|p| Circle::new(*p, 3, color.filled())))?;
            }
            c.configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()?;
        } else {
            let mut c =
                chart.build_cartesian_2d((xmin - 0.5)..(xmax + 0.5), 0f64..ymax.max(1.0))?;
            c.configure_mesh().y_desc(title).draw()?;
            for (i, (name, pts)) in series.iter().enumerate() {
                let color = colors[i % colors.len()];
                c.draw_series(pts.iter().map(|(x, y)| {
                    Rectangle::new([(*x - 0.3, 0.0), (*x + 0.3, *y)], color.filled())
                }))?
                .label(name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                });
            }
            c.configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()?;
        }
        root.present()?;
        Ok(())
    }
}

/// Registers the font plotters draws text with (Debian's DejaVu Sans, installed by xtask setup).
pub fn register_font() -> anyhow::Result<()> {
    let bytes = std::fs::read("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")?;
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow::anyhow!("DejaVuSans.ttf is not a usable font"))?;
    Ok(())
}

/// A file name for a plot title.
fn slug(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}
