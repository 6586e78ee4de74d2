//! Comments: found in the text outside scalars and metadata, each given the path of the
//! container go-yaml (and so sops) attaches it to.

use super::*;

impl Parse<'_> {
    /// Find every comment outside scalars and metadata, and give it the path of the
    /// container sops's YAML library would attach it to.
    pub(super) fn find_comments(&mut self) {
        // No `#` and no tab: nothing to find or judge (the scan is a byte at a time).
        if !self.places {
            return;
        }
        // Unstable: ranges with one start are jumped over to the furthest end either way.
        self.occupied.sort_unstable_by_key(|r| (r.start, r.end));
        let text = self.text;
        let mut refused_tab = None;
        // Each comment becomes a leaf as it is met: a million comment lines would
        // otherwise be listed first (32 MB), then made leaves.
        let occupied = std::mem::take(&mut self.occupied);
        comment_spans(text, &occupied, |met| match met {
            Met::Tab(pos) => {
                if refused_tab.is_none() && tab_go_yaml_refuses(text, self.line_start(pos), pos) {
                    refused_tab = Some(pos);
                }
            }
            Met::Comment(start, end, line, trailing) => {
                let container = self.comment_container(start, line, trailing);
                let path = container
                    .map(|c| self.containers[c].path.clone())
                    .unwrap_or_default();
                self.leaves.push(Leaf {
                    kind: LeafKind::Comment,
                    path,
                    place: (start + 1..end).into(),
                    ty: ScalarType::Comment,
                    own: None,
                    quoted: false,
                    style: Style::default(),
                });
            }
        });
        self.occupied = occupied;
        if let (None, Some(pos)) = (self.foreign, refused_tab) {
            self.foreign = Some((
                pos,
                "a tab after `-`, `?` or `:`, or in indentation (sops cannot read it)",
            ));
        }
    }

    pub(super) fn comment_container(
        &self,
        pos: usize,
        line: usize,
        trailing: bool,
    ) -> Option<usize> {
        let idx = self.items.partition_point(|i| i.pos < pos);
        let prev = idx.checked_sub(1).map(|i| &self.items[i]);
        // A collection and its first key start at the same place; the comment belongs
        // to the innermost of them, as in go-yaml.
        let next = self.items[idx..]
            .iter()
            .take_while(|i| i.pos == self.items[idx].pos)
            .last();
        if trailing {
            if let Some(p) = prev.filter(|p| p.line == line) {
                return Some(p.container);
            }
        }
        let col = self.col(pos);
        if let Some(n) = next {
            if col <= n.col || prev.is_none() {
                return Some(n.container);
            }
        }
        let mut c = prev?.container;
        // A comment before a flow collection's closing bracket is inside it, wherever
        // it stands (go-yaml and so sops read it so).
        let open_flow = |c: &Container| c.flow && pos < c.end;
        while self.containers[c].col > col && !open_flow(&self.containers[c]) {
            match self.containers[c].parent {
                Some(p) => c = p,
                None => break,
            }
        }
        Some(c)
    }
}

/// What [`comment_spans`] meets outside the spans it jumps over.
pub(super) enum Met {
    /// A tab, at this position.
    Tab(usize),
    /// A comment: its `#`, its end (before a `\r`), its 0-based line, and whether
    /// content stands before it on its line.
    Comment(usize, usize, usize, bool),
}

/// The comments and tabs of `text` outside the `occupied` spans (sorted), shown to
/// `met` in order.
pub(super) fn comment_spans(text: &str, occupied: &[Range<usize>], mut met: impl FnMut(Met)) {
    let bytes = text.as_bytes();
    let mut occ = 0usize;
    let mut pos = 0usize;
    let mut line_has_content = false;
    let mut line_no = 0usize;
    while pos < bytes.len() {
        while occ < occupied.len() && occupied[occ].end <= pos {
            occ += 1;
        }
        if occ < occupied.len() && occupied[occ].start <= pos {
            // Inside a scalar: jump over it, counting the lines it spans.
            let end = occupied[occ].end.max(pos + 1);
            line_no += text[pos..end].matches('\n').count();
            line_has_content = !text[pos..end].ends_with('\n');
            pos = end;
            continue;
        }
        match bytes[pos] {
            b'\n' => {
                line_no += 1;
                line_has_content = false;
                pos += 1;
            }
            b'#' if pos == 0 || matches!(bytes[pos - 1], b' ' | b'\t' | b'\n') => {
                let end = text[pos..].find('\n').map_or(text.len(), |i| pos + i);
                let end = if end > pos && bytes[end - 1] == b'\r' {
                    end - 1
                } else {
                    end
                };
                met(Met::Comment(pos, end, line_no, line_has_content));
                pos = end;
            }
            b'\t' => {
                met(Met::Tab(pos));
                pos += 1;
            }
            b' ' | b'\r' => pos += 1,
            _ => {
                line_has_content = true;
                pos += 1;
            }
        }
    }
}

/// libyaml (and so go-yaml and sops) refuses a tab that separates a block indicator
/// (`-`, `?`, a `:` that starts its line) from what follows, or that stands in a
/// line's indentation (even on a blank line).
pub(super) fn tab_go_yaml_refuses(text: &str, line_start: usize, pos: usize) -> bool {
    let before = text[line_start..pos].trim_end_matches([' ', '\t']);
    before.is_empty()
        || (before.ends_with(['-', '?', ':'])
            && before
                .chars()
                .all(|c| matches!(c, ' ' | '\t' | '-' | '?' | ':'))
            && (before.len() == 1
                || before[..before.len() - 1].ends_with([' ', '\t'])
                || !before.ends_with(':')))
}

/// A header line without the comment that may end it (`#` after a space or tab).
pub(super) fn without_comment(line: &str) -> &str {
    let b = line.as_bytes();
    match (1..b.len()).find(|&i| b[i] == b'#' && matches!(b[i - 1], b' ' | b'\t')) {
        Some(i) => &line[..i],
        None => line,
    }
}
