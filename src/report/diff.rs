//! Comparing two result tables (`summary.csv` or `batch.csv`) row by row with tolerances, as
//! `runner diff` does for CI.
//!
//! Rows are matched on their key: `experiment`, plus `variant` when the table has that column.
//! A tolerance `COLUMN=AMOUNT` bounds how far a column may move in its bad direction: down for
//! accuracies and throughput, up for losses and seconds, either way for other columns. A sign
//! chooses the direction explicitly (`+` means only an increase can regress, `-` only a
//! decrease) and a `%` suffix makes the amount relative to the baseline value.
//!
//! A row whose `flags` cell in the new table is not empty (a run with a non-finite final loss,
//! see [`super::ResultFlags`]) is a regression whatever the tolerances. The `flags` column may
//! be missing from either table (files written before it existed), and then nothing is flagged.

use std::fmt::Write as _;
use std::str::FromStr;

use super::{flag_names, FLAGS_COLUMN};

/// Which way a column may move before it counts as a regression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bad {
    /// A decrease is bad (accuracy, images/s).
    Down,
    /// An increase is bad (loss, seconds).
    Up,
    /// Any change beyond the amount is bad.
    Either,
}

/// One `--tol COLUMN=AMOUNT[%]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tolerance {
    /// Column name.
    pub column: String,
    /// Allowed change, in the column's units or percent of the baseline.
    pub amount: f64,
    /// Whether `amount` is a percentage of the baseline value.
    pub relative: bool,
    /// Which way is bad.
    pub bad: Bad,
}

impl FromStr for Tolerance {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (column, amount) = s
            .split_once('=')
            .ok_or_else(|| format!("expected COLUMN=AMOUNT such as test_acc=0.5, found `{s}`"))?;
        let column = column.trim();
        if column.is_empty() {
            return Err(format!("`{s}` names no column"));
        }
        let mut a = amount.trim();
        let bad = match a.chars().next() {
            Some('+') => {
                a = &a[1..];
                Bad::Up
            }
            Some('-') => {
                a = &a[1..];
                Bad::Down
            }
            _ => default_direction(column),
        };
        let relative = a.ends_with('%');
        let a = a.trim_end_matches('%');
        let amount: f64 = a
            .parse()
            .ok()
            .filter(|x: &f64| x.is_finite() && *x >= 0.0)
            .ok_or_else(|| {
                format!("tolerance `{amount}` for `{column}` is not a non-negative number")
            })?;
        Ok(Tolerance {
            column: column.to_string(),
            amount,
            relative,
            bad,
        })
    }
}

impl std::fmt::Display for Tolerance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = match self.bad {
            Bad::Down => "-",
            Bad::Up => "+",
            Bad::Either => "±",
        };
        let pct = if self.relative { "%" } else { "" };
        write!(f, "{} {sign}{}{pct}", self.column, self.amount)
    }
}

/// The bad direction of a column when the tolerance has no sign.
pub fn default_direction(column: &str) -> Bad {
    if column.contains("acc") || column.contains("per_sec") {
        Bad::Down
    } else if column.contains("loss") || column.contains("seconds") {
        Bad::Up
    } else {
        Bad::Either
    }
}

impl Tolerance {
    /// Whether moving from `base` to `new` stays within this tolerance.
    pub fn allows(&self, base: f64, new: f64) -> bool {
        let limit = if self.relative {
            self.amount / 100.0 * base.abs()
        } else {
            self.amount
        };
        let d = new - base;
        // A hair of slack so `0.5` allows a drop printed as exactly 0.5000.
        let limit = limit + 1e-9;
        match self.bad {
            Bad::Down => d >= -limit,
            Bad::Up => d <= limit,
            Bad::Either => d.abs() <= limit,
        }
    }
}

/// A CSV table: header and rows of text cells.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Column names.
    pub header: Vec<String>,
    /// Data rows, as many cells as the header.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// Parses CSV text; every row must have as many fields as the header.
    pub fn parse(bytes: &[u8]) -> Result<Table, String> {
        let mut r = csv::ReaderBuilder::new().flexible(false).from_reader(bytes);
        let header: Vec<String> = r
            .headers()
            .map_err(|e| e.to_string())?
            .iter()
            .map(str::to_string)
            .collect();
        if header.iter().all(String::is_empty) {
            return Err("it is empty (no header line)".into());
        }
        let mut rows = Vec::new();
        for rec in r.records() {
            let rec = rec.map_err(|e| e.to_string())?;
            rows.push(rec.iter().map(str::to_string).collect());
        }
        Ok(Table { header, rows })
    }

    fn col(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }
}

/// Why two tables cannot be compared.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DiffError {
    /// No `experiment` column to match rows on.
    #[error(
        "{which} has no `experiment` column: runner diff compares summary.csv or batch.csv files"
    )]
    NoKey {
        /// `baseline` or `new`.
        which: &'static str,
    },
    /// The two tables have different columns.
    #[error("the tables have different columns: only in the baseline: [{only_base}]; only in the new table: [{only_new}]")]
    Columns {
        /// Columns only in the baseline.
        only_base: String,
        /// Columns only in the new table.
        only_new: String,
    },
    /// A tolerance names a column neither table has.
    #[error("--tol {column}: no such column (columns: {columns})")]
    UnknownColumn {
        /// The column asked for.
        column: String,
        /// The columns there are.
        columns: String,
    },
    /// Two rows share a key.
    #[error("{which} has two rows for {key}")]
    DuplicateKey {
        /// `baseline` or `new`.
        which: &'static str,
        /// The key.
        key: String,
    },
    /// Rows present in one table only.
    #[error(
        "rows differ: missing from the new table: [{missing}]; not in the baseline: [{extra}]"
    )]
    Rows {
        /// Keys missing from the new table.
        missing: String,
        /// Keys only in the new table.
        extra: String,
    },
    /// A tolerance names the `flags` column, which holds names, not a number.
    #[error("--tol {FLAGS_COLUMN}: `{FLAGS_COLUMN}` holds names, not a number; a row whose new `{FLAGS_COLUMN}` cell is not empty is a regression whatever the tolerances")]
    FlagsTolerance,
    /// A baseline cell that should be a number is not.
    #[error("baseline row {key}: `{column}` is {value:?}, not a number")]
    NotANumber {
        /// Row key.
        key: String,
        /// Column.
        column: String,
        /// The cell.
        value: String,
    },
}

/// One compared cell.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// Baseline value.
    pub base: f64,
    /// New value, `None` when the new cell is empty or not a number (a failed run).
    pub new: Option<f64>,
    /// Whether it is within tolerance.
    pub ok: bool,
}

/// One compared row.
#[derive(Debug, Clone, PartialEq)]
pub struct RowDiff {
    /// `experiment` or `experiment [variant]`.
    pub key: String,
    /// One cell per tolerance, in order.
    pub cells: Vec<Cell>,
    /// The flag names in the new table's `flags` cell (none when it has no such column).
    pub flags: Vec<String>,
}

impl RowDiff {
    /// Whether any cell regressed or the new row is flagged.
    pub fn regressed(&self) -> bool {
        !self.flags.is_empty() || self.cells.iter().any(|c| !c.ok)
    }
}

/// The outcome of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Diff {
    /// The tolerances applied.
    pub tolerances: Vec<Tolerance>,
    /// Rows in baseline order.
    pub rows: Vec<RowDiff>,
}

impl Diff {
    /// Rows that regressed.
    pub fn regressions(&self) -> impl Iterator<Item = &RowDiff> {
        self.rows.iter().filter(|r| r.regressed())
    }
}

fn keys(t: &Table, which: &'static str) -> Result<Vec<String>, DiffError> {
    let e = t.col("experiment").ok_or(DiffError::NoKey { which })?;
    let v = t.col("variant");
    let keys: Vec<String> = t
        .rows
        .iter()
        .map(|r| match v.map(|i| r[i].as_str()) {
            Some(var) if !var.is_empty() => format!("{} [{var}]", r[e]),
            _ => r[e].clone(),
        })
        .collect();
    for (i, k) in keys.iter().enumerate() {
        if keys[..i].contains(k) {
            return Err(DiffError::DuplicateKey {
                which,
                key: k.clone(),
            });
        }
    }
    Ok(keys)
}

/// Compares `new` against `base` under `tolerances`.
pub fn compare(base: &Table, new: &Table, tolerances: &[Tolerance]) -> Result<Diff, DiffError> {
    let bk = keys(base, "the baseline")?;
    let nk = keys(new, "the new table")?;
    // `flags` may be in one table only: a baseline written before the column existed.
    let compared = |t: &Table| {
        let mut h: Vec<String> = t
            .header
            .iter()
            .filter(|c| *c != FLAGS_COLUMN)
            .cloned()
            .collect();
        h.sort();
        h
    };
    if compared(base) != compared(new) {
        let only = |a: &[String], b: &[String]| {
            a.iter()
                .filter(|c| *c != FLAGS_COLUMN && !b.contains(c))
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(DiffError::Columns {
            only_base: only(&base.header, &new.header),
            only_new: only(&new.header, &base.header),
        });
    }
    let mut cols = Vec::new();
    for t in tolerances {
        if t.column == FLAGS_COLUMN {
            return Err(DiffError::FlagsTolerance);
        }
        let (Some(b), Some(n)) = (base.col(&t.column), new.col(&t.column)) else {
            return Err(DiffError::UnknownColumn {
                column: t.column.clone(),
                columns: base.header.join(", "),
            });
        };
        cols.push((b, n));
    }
    let missing: Vec<&str> = bk
        .iter()
        .filter(|k| !nk.contains(k))
        .map(String::as_str)
        .collect();
    let extra: Vec<&str> = nk
        .iter()
        .filter(|k| !bk.contains(k))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() || !extra.is_empty() {
        return Err(DiffError::Rows {
            missing: missing.join(", "),
            extra: extra.join(", "),
        });
    }
    let flags_col = new.col(FLAGS_COLUMN);
    let mut rows = Vec::new();
    for (bi, key) in bk.iter().enumerate() {
        let ni = nk
            .iter()
            .position(|k| k == key)
            .expect("keys checked above");
        let mut cells = Vec::new();
        for (t, &(bc, nc)) in tolerances.iter().zip(&cols) {
            let raw = &base.rows[bi][bc];
            let b: f64 = raw.trim().parse().map_err(|_| DiffError::NotANumber {
                key: key.clone(),
                column: t.column.clone(),
                value: raw.clone(),
            })?;
            let n: Option<f64> = new.rows[ni][nc].trim().parse().ok();
            let ok = n.is_some_and(|n| t.allows(b, n));
            cells.push(Cell {
                base: b,
                new: n,
                ok,
            });
        }
        let flags = flags_col.map_or_else(Vec::new, |c| {
            flag_names(&new.rows[ni][c]).map(str::to_string).collect()
        });
        rows.push(RowDiff {
            key: key.clone(),
            cells,
            flags,
        });
    }
    Ok(Diff {
        tolerances: tolerances.to_vec(),
        rows,
    })
}

/// Compact number: up to 4 decimals, trailing zeros removed.
fn num(x: f64) -> String {
    let s = format!("{x:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// The comparison as a markdown table plus a verdict line, ready to paste into a pull request.
pub fn markdown(d: &Diff) -> String {
    let mut out = String::from("| row |");
    for t in &d.tolerances {
        let _ = write!(out, " {} (base → new, Δ) |", t.column);
    }
    out.push_str(" verdict |\n|---|");
    for _ in &d.tolerances {
        out.push_str("---:|");
    }
    out.push_str("---|\n");
    for r in &d.rows {
        let _ = write!(out, "| {} |", r.key.replace('|', "\\|"));
        for c in &r.cells {
            let cell = match c.new {
                Some(n) => {
                    let delta = n - c.base;
                    let pct = if c.base != 0.0 {
                        format!(", {:+.1}%", 100.0 * delta / c.base.abs())
                    } else {
                        String::new()
                    };
                    let sign = if delta >= 0.0 { "+" } else { "" };
                    format!("{} → {} ({sign}{}{pct})", num(c.base), num(n), num(delta))
                }
                None => format!("{} → missing", num(c.base)),
            };
            let mark = if c.ok { "" } else { " **✗**" };
            let _ = write!(out, " {cell}{mark} |");
        }
        let verdict = if !r.flags.is_empty() {
            format!("**regression** (flagged: {})", r.flags.join(", ")).replace('|', "\\|")
        } else if r.regressed() {
            "**regression**".to_string()
        } else {
            "ok".to_string()
        };
        let _ = writeln!(out, " {verdict} |");
    }
    let n = d.regressions().count();
    let tol = d
        .tolerances
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(
        out,
        "\n{} of {} row{} regressed (tolerances: {tol}).",
        n,
        d.rows.len(),
        if d.rows.len() == 1 { "" } else { "s" }
    );
    let flagged: Vec<String> = d
        .rows
        .iter()
        .filter(|r| !r.flags.is_empty())
        .map(|r| format!("{} ({})", r.key, r.flags.join(", ")))
        .collect();
    if !flagged.is_empty() {
        let _ = writeln!(
            out,
            "Flagged in the new table, a regression whatever the tolerances: {}.",
            flagged.join("; ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Table {
        Table::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn tolerances_parse_with_directions() {
        let a: Tolerance = "test_acc=0.5".parse().unwrap();
        assert_eq!((a.amount, a.relative, a.bad), (0.5, false, Bad::Down));
        let s: Tolerance = "seconds=+50%".parse().unwrap();
        assert_eq!((s.amount, s.relative, s.bad), (50.0, true, Bad::Up));
        let p: Tolerance = "params=0".parse().unwrap();
        assert_eq!(p.bad, Bad::Either);
        assert!("test_acc".parse::<Tolerance>().is_err());
        assert!("test_acc=x".parse::<Tolerance>().is_err());
        assert!("test_acc=-inf".parse::<Tolerance>().is_err());
        assert!(a.allows(94.0, 93.5) && !a.allows(94.0, 93.49) && a.allows(94.0, 99.0));
        assert!(s.allows(10.0, 15.0) && !s.allows(10.0, 15.1) && s.allows(10.0, 1.0));
        assert!(p.allows(10.0, 10.0) && !p.allows(10.0, 11.0) && !p.allows(10.0, 9.0));
    }

    const BASE: &str = "experiment,variant,test_acc,seconds\na,x,90.0,10\na,y,80.0,10\nb,,70.0,5\n";

    #[test]
    fn identical_tables_pass() {
        let tol = vec!["test_acc=0.5".parse().unwrap()];
        let d = compare(&t(BASE), &t(BASE), &tol).unwrap();
        assert_eq!(d.regressions().count(), 0);
        assert!(markdown(&d).contains("0 of 3 rows regressed"));
    }

    #[test]
    fn a_drop_beyond_tolerance_is_named() {
        let new = "experiment,variant,seconds,test_acc\nb,,5,70.0\na,y,10,79.0\na,x,30,90.2\n";
        let tol: Vec<Tolerance> = vec![
            "test_acc=0.5".parse().unwrap(),
            "seconds=+50%".parse().unwrap(),
        ];
        let d = compare(&t(BASE), &t(new), &tol).unwrap();
        let bad: Vec<&str> = d.regressions().map(|r| r.key.as_str()).collect();
        assert_eq!(bad, ["a [x]", "a [y]"]);
        let md = markdown(&d);
        assert!(md.contains("| a [y] | 80 → 79 (-1, -1.2%) **✗** |"), "{md}");
        assert!(md.contains("2 of 3 rows regressed"), "{md}");
    }

    #[test]
    fn structural_differences_are_errors() {
        let tol = vec!["test_acc=0.5".parse().unwrap()];
        let fewer = "experiment,variant,test_acc,seconds\na,x,90.0,10\n";
        assert!(matches!(
            compare(&t(BASE), &t(fewer), &tol),
            Err(DiffError::Rows { .. })
        ));
        let cols = "experiment,variant,test_acc\na,x,90.0\n";
        assert!(matches!(
            compare(&t(BASE), &t(cols), &tol),
            Err(DiffError::Columns { .. })
        ));
        let other: Vec<Tolerance> = vec!["acc=1".parse().unwrap()];
        assert!(matches!(
            compare(&t(BASE), &t(BASE), &other),
            Err(DiffError::UnknownColumn { .. })
        ));
        let dup = "experiment,test_acc\na,1\na,2\n";
        assert!(matches!(
            compare(&t(dup), &t(dup), &tol),
            Err(DiffError::DuplicateKey { .. })
        ));
        assert!(Table::parse(b"experiment,test_acc\na,1,2\n").is_err());
    }

    #[test]
    fn a_flagged_new_row_is_a_regression_whatever_the_tolerances() {
        let base = "experiment,variant,test_acc,flags\na,x,90.0,\na,y,80.0,\nb,,70.0,\n";
        // Same numbers, so the tolerance alone passes every row.
        let new = "experiment,variant,test_acc,flags\na,x,90.0,non_finite_test_loss\na,y,80.0,\nb,,70.0,non_finite_train_loss;non_finite_test_loss\n";
        let tol = vec!["test_acc=100".parse().unwrap()];
        let d = compare(&t(base), &t(new), &tol).unwrap();
        let bad: Vec<(&str, Vec<String>)> = d
            .regressions()
            .map(|r| (r.key.as_str(), r.flags.clone()))
            .collect();
        assert_eq!(
            bad,
            [
                ("a [x]", vec!["non_finite_test_loss".to_string()]),
                (
                    "b",
                    vec![
                        "non_finite_train_loss".to_string(),
                        "non_finite_test_loss".to_string()
                    ]
                ),
            ]
        );
        assert!(d.rows[0].cells[0].ok, "the cell itself is within tolerance");
        let md = markdown(&d);
        assert!(
            md.contains(
                "| a [x] | 90 → 90 (+0, +0.0%) | **regression** (flagged: non_finite_test_loss) |"
            ),
            "{md}"
        );
        assert!(md.contains("| a [y] | 80 → 80 (+0, +0.0%) | ok |"), "{md}");
        assert!(md.contains("2 of 3 rows regressed"), "{md}");
        assert!(
            md.contains("a regression whatever the tolerances: a [x] (non_finite_test_loss); b (non_finite_train_loss, non_finite_test_loss)."),
            "{md}"
        );
        // Flags in the baseline only are not the new table's problem.
        let d = compare(&t(new), &t(base), &tol).unwrap();
        assert_eq!(d.regressions().count(), 0);
        assert!(!markdown(&d).contains("Flagged"));
    }

    #[test]
    fn a_flags_column_in_one_table_only_is_no_structural_difference() {
        let tol = vec!["test_acc=0.5".parse().unwrap()];
        let with =
            "experiment,variant,test_acc,seconds,flags\na,x,90.0,10,\na,y,80.0,10,\nb,,70.0,5,\n";
        let d = compare(&t(BASE), &t(with), &tol).expect("old baseline, new table");
        assert_eq!(d.regressions().count(), 0);
        let d = compare(&t(with), &t(BASE), &tol).expect("new baseline, old table");
        assert_eq!(d.regressions().count(), 0);
        let flagged = with.replacen("90.0,10,", "90.0,10,non_finite_test_loss", 1);
        let d = compare(&t(BASE), &t(&flagged), &tol).unwrap();
        assert_eq!(
            d.regressions().map(|r| r.key.as_str()).collect::<Vec<_>>(),
            ["a [x]"]
        );
        // Any other column still has to be in both.
        let other =
            "experiment,variant,test_acc,seconds,note\na,x,90.0,10,\na,y,80.0,10,\nb,,70.0,5,\n";
        match compare(&t(BASE), &t(other), &tol) {
            Err(DiffError::Columns {
                only_base,
                only_new,
            }) => {
                assert_eq!((only_base.as_str(), only_new.as_str()), ("", "note"));
            }
            r => panic!("expected a column error, got {r:?}"),
        }
        // A tolerance on the flags column is refused with the reason.
        let on_flags: Vec<Tolerance> = vec!["flags=0".parse().unwrap()];
        let err = compare(&t(with), &t(with), &on_flags).unwrap_err();
        assert_eq!(err, DiffError::FlagsTolerance);
        assert!(err.to_string().contains("whatever the tolerances"), "{err}");
    }

    #[test]
    fn an_empty_new_cell_is_a_regression() {
        let new = "experiment,variant,test_acc,seconds\na,x,,\na,y,80.0,10\nb,,70.0,5\n";
        let tol = vec!["test_acc=0.5".parse().unwrap()];
        let d = compare(&t(BASE), &t(new), &tol).unwrap();
        assert_eq!(d.regressions().count(), 1);
        assert!(markdown(&d).contains("90 → missing"));
    }
}
