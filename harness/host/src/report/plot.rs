//! Line charts as inline SVG (plotters' SVG backend): one line per worker, the total thicker
//! and black. Minutes since the campaign's start on x.

use plotters::prelude::*;

use super::ReportError;

/// One line of a chart.
#[derive(Clone, Debug)]
pub struct Series {
    pub name: String,
    /// (minutes, value)
    pub points: Vec<(f64, f64)>,
    /// Drawn thicker, in black.
    pub total: bool,
}

const SIZE: (u32, u32) = (640, 300);

/// An SVG document (`<svg …>…</svg>`) of `series`; a chart without points says so instead.
pub fn chart(title: &str, y_desc: &str, series: &[Series]) -> Result<String, ReportError> {
    let err = |e: &dyn std::fmt::Display| ReportError::Plot(format!("{title}: {e}"));
    let all = series.iter().flat_map(|s| s.points.iter());
    let (xmax, ymax) = all.fold((0f64, 0f64), |(x, y), p| (x.max(p.0), y.max(p.1)));
    let (xmax, ymax) = (xmax.max(1.0), if ymax > 0.0 { ymax * 1.1 } else { 1.0 });
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..xmax, 0f64..ymax)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("minutes")
            .y_desc(y_desc)
            .draw()
            .map_err(|e| err(&e))?;
        for (i, s) in series.iter().filter(|s| !s.points.is_empty()).enumerate() {
            let style = if s.total {
                BLACK.stroke_width(3)
            } else {
                Palette99::pick(i).stroke_width(1)
            };
            chart
                .draw_series(LineSeries::new(s.points.iter().copied(), style))
                .map_err(|e| err(&e))?
                .label(s.name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], style));
        }
        if series.iter().all(|s| s.points.is_empty()) {
            root.draw(&Text::new(
                "no samples yet",
                (SIZE.0 as i32 / 2 - 50, SIZE.1 as i32 / 2),
                ("sans-serif", 16),
            ))
            .map_err(|e| err(&e))?;
        } else {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_has_one_polyline_per_series_with_its_points() {
        let s = |name: &str, total| Series {
            name: name.into(),
            points: vec![(0.0, 1.0), (1.0, 3.0), (2.5, 2.0)],
            total,
        };
        let svg = chart(
            "executions/s",
            "runs/s",
            &[s("w0", false), s("total", true)],
        )
        .expect("draws");
        assert!(svg.starts_with("<svg"), "{svg:.200}");
        let lines: Vec<&str> = svg
            .split("<polyline")
            .skip(1)
            .filter(|l| l.contains("points=\""))
            .collect();
        // Two data lines and two legend marks.
        assert!(lines.len() >= 2, "{svg}");
        assert!(svg.contains("total") && svg.contains("executions/s"));
    }

    #[test]
    fn an_empty_chart_says_so() {
        let svg = chart("corpus", "inputs", &[]).expect("draws");
        assert!(svg.contains("no samples yet"));
    }
}
