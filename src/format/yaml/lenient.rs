//! go-yaml (and so sops) reads a flow collection or a quoted scalar whose later lines
//! sit left of their key's indentation (`k: [\n  a\n]`, `k: "one\ntwo"`); saphyr refuses
//! them. When saphyr names such a line, it is handed the text again with spaces added
//! before that line's content: whitespace there means nothing inside a flow collection or
//! a quoted scalar, so the reading is go-yaml's. The spaces exist only in saphyr's copy;
//! every span is mapped back to the file as written, whose layout stays untouched.

use std::collections::BTreeMap;

use super::parse::quoted_end;

/// Re-readings allowed per file: each is a whole parse, and real files need a few.
pub(super) const MAX_FIXES: usize = 100;

/// Spaces added before lines of the text (by 0-based line), and the map from a char
/// index in the padded text back to one in the text.
#[derive(Default)]
pub(super) struct Pads {
    by_line: BTreeMap<usize, usize>,
    fixes: usize,
    /// Per padded line, in order: its start in the padded text (chars), its spaces, and
    /// the spaces added up to and including it.
    remap: Vec<(usize, usize, usize)>,
}

impl Pads {
    pub(super) fn is_empty(&self) -> bool {
        self.by_line.is_empty()
    }

    pub(super) fn fixes(&self) -> usize {
        self.fixes
    }

    /// The text with the spaces added.
    pub(super) fn apply(&self, text: &str) -> String {
        let extra: usize = self.by_line.values().sum();
        let mut out = String::with_capacity(text.len() + extra);
        for (n, line) in text.split_inclusive('\n').enumerate() {
            if let Some(&count) = self.by_line.get(&n) {
                out.extend(std::iter::repeat_n(' ', count));
            }
            out.push_str(line);
        }
        out
    }

    /// The char index in the text of char index `c` of the padded text; an added space
    /// maps to the start of its line.
    pub(super) fn original(&self, c: usize) -> usize {
        let i = self.remap.partition_point(|&(start, _, _)| start <= c);
        if i == 0 {
            return c;
        }
        let (start, count, through) = self.remap[i - 1];
        if c < start + count {
            start - (through - count)
        } else {
            c - through
        }
    }

    /// Adds the spaces that let saphyr past its error `info` at `line` (1-based) and
    /// `col` (0-based, chars) of `padded`, the text saphyr was given; false when the
    /// error is not one of these or no spaces would help.
    pub(super) fn fix(
        &mut self,
        text: &str,
        padded: &str,
        line: usize,
        col: usize,
        info: &str,
    ) -> bool {
        let lines: Vec<&str> = padded.split('\n').collect();
        let added = match info {
            "invalid indentation in quoted scalar" => quoted_lines(padded, &lines, line - 1, col),
            "invalid indentation" | "invalid indentation in flow construct" => {
                flow_line(&lines, line - 1, col).into_iter().collect()
            }
            _ => Vec::new(),
        };
        if added.is_empty() {
            return false;
        }
        self.fixes += 1;
        for (n, count) in added {
            *self.by_line.entry(n).or_default() += count;
        }
        self.remap(text);
        true
    }

    fn remap(&mut self, text: &str) {
        self.remap.clear();
        let (mut chars, mut through) = (0, 0);
        for (n, line) in text.split_inclusive('\n').enumerate() {
            if let Some(&count) = self.by_line.get(&n) {
                through += count;
                self.remap.push((chars + through - count, count, through));
            }
            chars += line.chars().count();
        }
    }
}

/// Leading blanks, in chars.
fn indentation(line: &str) -> usize {
    line.chars().take_while(|&c| c == ' ' || c == '\t').count()
}

/// The continuation lines of the quoted scalar opening at `col` of line `at` that sit
/// left of its quote, with the spaces that bring them to it (the quote itself stands
/// where saphyr accepts a token). A document marker at column 0 is left for saphyr to
/// refuse, as go-yaml does.
fn quoted_lines(text: &str, lines: &[&str], at: usize, col: usize) -> Vec<(usize, usize)> {
    let Some(first) = lines.get(at) else {
        return Vec::new();
    };
    let Some((offset, quote @ ('"' | '\''))) = first.char_indices().nth(col) else {
        return Vec::new();
    };
    let start = lines[..at].iter().map(|l| l.len() + 1).sum::<usize>() + offset;
    // Unclosed, it runs to the end: saphyr says so once it reads that far.
    let end = quoted_end(text, start, quote as u8).unwrap_or(text.len());
    let last = at + text[start..end].matches('\n').count();
    (at + 1..=last.min(lines.len() - 1))
        .filter_map(|n| {
            let line = lines[n];
            let ind = indentation(line);
            let content = line[line.len() - line.trim_start_matches([' ', '\t']).len()..]
                .trim_end_matches('\r');
            let marker = ind == 0
                && (content.starts_with("---") || content.starts_with("..."))
                && content[3..]
                    .chars()
                    .next()
                    .is_none_or(|c| c == ' ' || c == '\t');
            (!content.is_empty() && ind < col && !marker).then(|| (n, col - ind))
        })
        .collect()
}

/// The spaces that bring line `at`, whose first token at `col` sits left of its flow
/// collection's indentation, right of every bracket opened since the last line that
/// starts at column 0: the outermost bracket stands where saphyr accepts a token, and
/// lines after it already sit right of column 0 (saphyr names them in order).
fn flow_line(lines: &[&str], at: usize, col: usize) -> Option<(usize, usize)> {
    let starts_block = |l: &&str| {
        l.chars()
            .next()
            .is_some_and(|c| !matches!(c, ' ' | '\t' | '#' | '\r'))
    };
    let from = lines[..at].iter().rposition(starts_block).unwrap_or(0);
    let reach = lines[from..at]
        .iter()
        .filter_map(|l| l.rfind(['[', '{']).map(|b| l[..b].chars().count() + 1))
        .max()?;
    (reach > col).then(|| (at, reach - col))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spaces_go_where_saphyr_needs_them() {
        // (padded text, error line 1-based, col, info) -> added (line, spaces)
        type Case<'a> = (&'a str, usize, usize, &'a str, &'a [(usize, usize)]);
        let cases: &[Case] = &[
            (
                "a: \"x\ny\"\n",
                1,
                3,
                "invalid indentation in quoted scalar",
                &[(1, 3)],
            ),
            (
                "a: 'it''s\nyes'\n",
                1,
                3,
                "invalid indentation in quoted scalar",
                &[(1, 3)],
            ),
            // An escaped quote does not end the scalar; an escaped line break continues it.
            (
                "a: \"x\\\"\ny\\\n z\"\nb: 1\n",
                1,
                3,
                "invalid indentation in quoted scalar",
                &[(1, 3), (2, 2)],
            ),
            // Blank lines and the line after the closing quote are left alone.
            (
                "a: \"x\n\n  \ny\"\nb: 1\n",
                1,
                3,
                "invalid indentation in quoted scalar",
                &[(3, 3)],
            ),
            // A document marker at column 0 stays for saphyr to refuse.
            (
                "a: \"x\n---\ny\"\n",
                1,
                3,
                "invalid indentation in quoted scalar",
                &[(2, 3)],
            ),
            ("a: [\n  1,\n]\n", 3, 0, "invalid indentation", &[(2, 4)]),
            (
                "x:\n  b: [1,\n2]\n",
                3,
                0,
                "invalid indentation in flow construct",
                &[(2, 6)],
            ),
            (
                "x:\n  b:\n    {a: [1,\n # c\n 2]}\n",
                5,
                1,
                "invalid indentation",
                &[(4, 8)],
            ),
            // Nothing to do: another error, or no bracket to go by.
            ("a: b\nc\n", 2, 0, "invalid indentation", &[]),
            (
                "a: [1,\n2]\n",
                2,
                0,
                "mapping values are not allowed in this context",
                &[],
            ),
        ];
        for &(text, line, col, info, want) in cases {
            let mut pads = Pads::default();
            let fixed = pads.fix(text, text, line, col, info);
            let got: Vec<(usize, usize)> = pads.by_line.iter().map(|(&l, &c)| (l, c)).collect();
            assert_eq!(got, want, "{text:?}");
            assert_eq!(fixed, !want.is_empty(), "{text:?}");
        }
    }

    #[test]
    fn padded_positions_map_back_to_the_text() {
        let text = "a: [\né,\n]\n";
        let mut pads = Pads::default();
        pads.by_line.insert(1, 2);
        pads.by_line.insert(2, 3);
        pads.remap(text);
        let padded = pads.apply(text);
        assert_eq!(padded, "a: [\n  é,\n   ]\n");
        let back: Vec<usize> = (0..padded.chars().count())
            .map(|c| pads.original(c))
            .collect();
        // a : _ [ \n | pad pad é , \n | pad pad pad ] \n
        assert_eq!(back, [0, 1, 2, 3, 4, 5, 5, 5, 6, 7, 8, 8, 8, 8, 9]);
        // Every char that is not an added space maps to the same char of the text.
        let orig: Vec<char> = text.chars().collect();
        for (c, ch) in padded.chars().enumerate() {
            if ch != ' ' || orig[back[c]] == ' ' {
                assert_eq!(orig[back[c]], ch, "at {c}");
            }
        }
    }
}
