//! The known-gaps table of docs/CONFORMANCE.md.
//!
//! Rows `| runtime | case | reason |` below a heading that starts with
//! "Known gaps"; the header row and the `---` row are skipped.

use std::path::Path;

pub struct Gap {
    pub runtime: String,
    pub case: String,
}

pub fn read(path: &Path) -> std::io::Result<Vec<Gap>> {
    let text = std::fs::read_to_string(path)?;
    Ok(parse(&text))
}

fn parse(text: &str) -> Vec<Gap> {
    let mut in_section = false;
    let mut gaps = vec![];
    for line in text.lines() {
        if let Some(h) = line.strip_prefix('#') {
            in_section = h.trim_start_matches('#').trim().starts_with("Known gaps");
            continue;
        }
        if !in_section || !line.trim_start().starts_with('|') {
            continue;
        }
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().trim_matches('`'))
            .collect();
        if cells.len() < 3 || cells[0] == "runtime" || cells[0].starts_with("---") {
            continue;
        }
        gaps.push(Gap {
            runtime: cells[0].to_string(),
            case: cells[1].to_string(),
        });
    }
    gaps
}

pub fn find<'a>(gaps: &'a [Gap], runtime: &str, case: &str) -> Option<&'a Gap> {
    gaps.iter().find(|g| g.runtime == runtime && g.case == case)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_the_known_gaps_section_only() {
        let doc = "# Conformance\n| runtime | case | reason |\n| hull | other | x |\n\
                   ## Known gaps\n\n| runtime | case | reason |\n| --- | --- | --- |\n\
                   | hull | `a case` | issue 4 |\n| runc | b | old |\n## Next\n| hull | c | y |\n";
        let g = parse(doc);
        let rows: Vec<_> = g.iter().map(|g| (&*g.runtime, &*g.case)).collect();
        assert_eq!(rows, [("hull", "a case"), ("runc", "b")]);
        assert!(find(&g, "runc", "b").is_some());
        assert!(find(&g, "hull", "b").is_none());
    }
}
