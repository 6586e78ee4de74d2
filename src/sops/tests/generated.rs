//! Generated documents of every format, layout and style: each round-trips byte for
//! byte or says why not, and a flipped byte never gives another value.

use super::*;
use crate::sops::OpenOptions;

// ---- Generated documents -------------------------------------------------------------

/// A generated tree: what a YAML reader must find in the text rendered from it.
#[derive(Clone, Debug)]
pub(super) enum G {
    Map(Vec<G>),
    Seq(Vec<G>),
    Scalar(Sc),
}

#[derive(Clone, Copy, Debug)]
pub(super) enum Sc {
    Plain,
    Single,
    Double,
    /// A literal block with this chomping indicator.
    Literal(&'static str),
    /// A double-quoted value broken over two lines (the break reads as a space).
    Folded,
    Int(i64),
    Float(&'static str, f64),
    Bool(bool),
    Null,
}

pub(super) fn g_tree() -> impl Strategy<Value = G> {
    let scalar = prop_oneof![
        4 => Just(Sc::Plain),
        2 => Just(Sc::Single),
        2 => Just(Sc::Double),
        1 => Just(Sc::Literal("")),
        1 => Just(Sc::Literal("-")),
        1 => Just(Sc::Literal("+")),
        1 => Just(Sc::Folded),
        1 => any::<i64>().prop_map(Sc::Int),
        1 => prop_oneof![Just(("1.5", 1.5)), Just(("-0.25", -0.25)), Just(("2.5e+3", 2500.0)), Just((".inf", f64::INFINITY))]
            .prop_map(|(s, v)| Sc::Float(s, v)),
        1 => any::<bool>().prop_map(Sc::Bool),
        1 => Just(Sc::Null),
    ]
    .prop_map(G::Scalar);
    scalar.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(G::Map),
            prop::collection::vec(inner, 0..4).prop_map(G::Seq),
        ]
    })
}

/// How a generated tree is written.
#[derive(Clone, Debug)]
pub(super) struct Layout {
    /// Per collection, in order: written in flow style?
    pub(super) flow: Vec<bool>,
    /// Per item, in order: a comment line before it, a comment after it on its line.
    pub(super) comments: Vec<(bool, bool)>,
    /// Per flow collection: break lines after its commas.
    pub(super) flow_breaks: Vec<bool>,
    pub(super) indent: usize,
    pub(super) top_flow: bool,
    pub(super) doc_start: bool,
    pub(super) doc_end: bool,
    pub(super) crlf: bool,
    pub(super) final_newline: bool,
    pub(super) unicode: bool,
}

pub(super) fn g_layout() -> impl Strategy<Value = Layout> {
    (
        prop::collection::vec(prop::bool::weighted(0.25), 64),
        prop::collection::vec((prop::bool::weighted(0.2), prop::bool::weighted(0.2)), 64),
        prop::collection::vec(prop::bool::weighted(0.3), 64),
        prop_oneof![Just(2usize), Just(4)],
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.3),
    )
        .prop_map(
            |(
                flow,
                comments,
                flow_breaks,
                indent,
                top_flow,
                doc_start,
                doc_end,
                crlf,
                final_newline,
                unicode,
            )| Layout {
                flow,
                comments,
                flow_breaks,
                indent,
                top_flow,
                doc_start,
                doc_end,
                crlf,
                final_newline,
                unicode,
            },
        )
}

/// Renders a generated tree as YAML, numbering keys, values and comments so every
/// secret is a unique marker that must not survive encryption.
pub(super) struct Render<'l> {
    pub(super) l: &'l Layout,
    pub(super) out: String,
    pub(super) n: usize,
    pub(super) coll: usize,
    pub(super) item: usize,
    pub(super) markers: Vec<String>,
    pub(super) comments: Vec<String>,
    /// The last thing written is a literal block, whose value depends on the line
    /// break after it.
    pub(super) ends_with_block: bool,
}

impl Render<'_> {
    fn marker(&mut self, prefix: &str) -> String {
        self.n += 1;
        // `-` is not a base64 character: a marker never turns up in ciphertext by chance.
        let m = format!("{prefix}{}-x", self.n);
        self.markers.push(m.clone());
        m
    }

    fn text(&mut self) -> String {
        let m = self.marker("zq");
        if self.l.unicode {
            format!("{m} é日")
        } else {
            m
        }
    }

    fn next_flow(&mut self) -> bool {
        self.coll += 1;
        self.l.flow[self.coll % self.l.flow.len()]
    }

    fn next_item(&mut self) -> (bool, bool) {
        self.item += 1;
        self.l.comments[self.item % self.l.comments.len()]
    }

    fn comment(&mut self) -> String {
        let m = self.marker("cm");
        let text = format!(" note {m}");
        self.comments.push(text.clone());
        format!("#{text}")
    }

    /// The scalar's text in block context and the value a reader must find.
    fn scalar(&mut self, sc: Sc, indent: usize, flow: bool) -> (String, Value) {
        self.ends_with_block = false;
        let s = |t: ScalarType, v: &str| Value::Scalar(t, Zeroizing::new(v.to_string()));
        match sc {
            Sc::Plain => {
                let t = self.text();
                (t.clone(), s(ScalarType::Str, &t))
            }
            Sc::Single => {
                let t = format!("{} it's: #1", self.text());
                (
                    format!("'{}'", t.replace('\'', "''")),
                    s(ScalarType::Str, &t),
                )
            }
            Sc::Double => {
                let t = format!("{} \"q\"\t\\ end", self.text());
                let esc = t
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\t', "\\t");
                (format!("\"{esc}\""), s(ScalarType::Str, &t))
            }
            Sc::Folded if !flow => {
                let (a, b) = (self.text(), self.text());
                let pad = " ".repeat(indent + 1);
                (
                    format!("\"{a}\n{pad}{b}\""),
                    s(ScalarType::Str, &format!("{a} {b}")),
                )
            }
            Sc::Literal(chomp) if !flow => {
                let (a, b) = (self.text(), self.text());
                let pad = " ".repeat(indent + self.l.indent);
                let mut text = format!("|{chomp}\n{pad}{a}\n{pad}{b}");
                let value = match chomp {
                    "-" => format!("{a}\n{b}"),
                    // The blank line after it is part of a `+` block's value.
                    "+" => {
                        text.push('\n');
                        format!("{a}\n{b}\n\n")
                    }
                    _ => format!("{a}\n{b}\n"),
                };
                self.ends_with_block = true;
                (text, s(ScalarType::Str, &value))
            }
            Sc::Folded | Sc::Literal(_) => self.scalar(Sc::Double, indent, flow),
            Sc::Int(i) => (i.to_string(), s(ScalarType::Int, &i.to_string())),
            Sc::Float(t, v) => (
                t.to_string(),
                s(ScalarType::Float, &scalar::format_float(v)),
            ),
            Sc::Bool(b) => (b.to_string(), s(ScalarType::Bool, &b.to_string())),
            Sc::Null => ("null".into(), s(ScalarType::Null, "")),
        }
    }

    fn key(&mut self) -> String {
        self.n += 1;
        format!("k{}", self.n)
    }

    fn flow(&mut self, g: &G, indent: usize) -> Value {
        match g {
            G::Scalar(sc) => {
                let (t, v) = self.scalar(*sc, indent, true);
                self.out.push_str(&t);
                v
            }
            G::Map(items) | G::Seq(items) => {
                let is_map = matches!(g, G::Map(_));
                self.coll += 1;
                let breaks = self.l.flow_breaks[self.coll % self.l.flow_breaks.len()];
                self.out.push(if is_map { '{' } else { '[' });
                let mut entries = Vec::new();
                let mut seq = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                        if breaks {
                            self.out.push('\n');
                            self.out.push_str(&" ".repeat(indent + 1));
                        } else {
                            self.out.push(' ');
                        }
                    }
                    if is_map {
                        let k = self.key();
                        self.out.push_str(&k);
                        self.out.push_str(": ");
                        let v = self.flow(item, indent + 1);
                        entries.push((k, v));
                    } else {
                        seq.push(self.flow(item, indent + 1));
                    }
                }
                self.out.push(if is_map { '}' } else { ']' });
                if is_map {
                    Value::Map(entries)
                } else {
                    Value::Seq(seq)
                }
            }
        }
    }

    /// After `key:` or `- `: the value, through the end of its line(s).
    fn after_indicator(&mut self, g: &G, indent: usize, trailing: bool) -> Value {
        let v = match g {
            G::Scalar(sc) => {
                let (t, v) = self.scalar(*sc, indent, false);
                self.out.push(' ');
                self.out.push_str(&t);
                if trailing && !t.starts_with('|') && !t.contains('\n') {
                    let c = self.comment();
                    self.out.push(' ');
                    self.out.push_str(&c);
                }
                self.out.push('\n');
                return v;
            }
            G::Map(items) | G::Seq(items) if items.is_empty() || self.next_flow() => {
                self.out.push(' ');
                self.flow(g, indent)
            }
            G::Map(items) => {
                self.out.push('\n');
                return self.block_map(items, indent + self.l.indent);
            }
            G::Seq(items) => {
                self.out.push('\n');
                return self.block_seq(items, indent + self.l.indent);
            }
        };
        self.out.push('\n');
        v
    }

    fn block_map(&mut self, items: &[G], indent: usize) -> Value {
        let mut entries = Vec::new();
        for item in items {
            let (before, trailing) = self.next_item();
            if before {
                let c = self.comment();
                self.out.push_str(&" ".repeat(indent));
                self.out.push_str(&c);
                self.out.push('\n');
            }
            let k = self.key();
            self.out.push_str(&" ".repeat(indent));
            self.out.push_str(&k);
            self.out.push(':');
            let v = self.after_indicator(item, indent, trailing);
            entries.push((k, v));
        }
        Value::Map(entries)
    }

    fn block_seq(&mut self, items: &[G], indent: usize) -> Value {
        let mut out = Vec::new();
        for item in items {
            let (before, trailing) = self.next_item();
            if before {
                let c = self.comment();
                self.out.push_str(&" ".repeat(indent));
                self.out.push_str(&c);
                self.out.push('\n');
            }
            self.out.push_str(&" ".repeat(indent));
            self.out.push('-');
            out.push(self.after_indicator(item, indent, trailing));
        }
        Value::Seq(out)
    }
}

/// A generated YAML document: its text, what a reader must find, the secrets in it.
pub(super) fn yaml_doc(tree: &G, l: &Layout) -> (String, Value, Vec<String>, Vec<String>) {
    let mut r = Render {
        l,
        out: String::new(),
        n: 0,
        coll: 0,
        item: 0,
        markers: Vec::new(),
        comments: Vec::new(),
        ends_with_block: false,
    };
    if l.doc_start {
        r.out.push_str("---\n");
    }
    // The root is a mapping, as sops requires.
    let items: Vec<G> = match tree {
        G::Map(items) | G::Seq(items) => items.clone(),
        scalar => vec![scalar.clone()],
    };
    let value = if l.top_flow {
        let v = r.flow(&G::Map(items), 0);
        r.out.push('\n');
        v
    } else {
        r.block_map(&items, 0)
    };
    if l.doc_end {
        r.out.push_str("...\n");
    }
    let mut text = r.out;
    let block_last = r.ends_with_block && !l.doc_end;
    if !l.final_newline && !block_last && text.ends_with('\n') && !text.ends_with("\n\n") {
        text.pop();
    }
    if l.crlf {
        text = text.replace('\n', "\r\n");
    }
    (text, value, r.markers, r.comments)
}

/// The first place where `got` differs from `want`, if any.
pub(super) fn same_tree(got: &Value, want: &Value) -> Result<(), String> {
    match (got, want) {
        (Value::Map(a), Value::Map(b)) if a.len() == b.len() => {
            for ((ka, va), (kb, vb)) in a.iter().zip(b) {
                if ka != kb {
                    return Err(format!("key {ka:?} where {kb:?} was written"));
                }
                same_tree(va, vb).map_err(|e| format!("{ka}: {e}"))?;
            }
            Ok(())
        }
        (Value::Seq(a), Value::Seq(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                same_tree(x, y).map_err(|e| format!("[{i}]: {e}"))?;
            }
            Ok(())
        }
        (Value::Scalar(ScalarType::Null, _), Value::Scalar(ScalarType::Null, _)) => Ok(()),
        (Value::Scalar(ta, a), Value::Scalar(tb, b)) => {
            let same = ta == tb
                && (a == b
                    || (*ta == ScalarType::Float
                        && scalar::parse_float(a) == scalar::parse_float(b)));
            if same {
                Ok(())
            } else {
                Err(format!(
                    "{ta:?} {:?} where {tb:?} {:?} was written",
                    a.as_str(),
                    b.as_str()
                ))
            }
        }
        _ => Err("a different structure".into()),
    }
}

pub(super) fn check_generated(
    format: Format,
    text: &str,
    want: &Value,
    markers: &[String],
    comments: &[String],
) {
    // The parser reads what the text says (the generator is the reference).
    let doc = parse("t", format, text.as_bytes().to_vec())
        .unwrap_or_else(|e| panic!("valid input refused: {e}\n{text}"));
    let got = doc.plain_value(&doc.docs[0].root).expect("text values");
    if let Err(e) = same_tree(&got, want) {
        panic!("misread: {e}\n{text}");
    }
    let found: Vec<&str> = doc
        .comments()
        .iter()
        .map(|&i| doc.value_str(i).unwrap_or_default())
        .collect();
    assert_eq!(found, comments, "comments misread\n{text}");
    // Writing it keeps the data, whatever happens to the layout, and no secret survives.
    let t = trip(format, text.as_bytes());
    // And a layout that does not come back is said, never silent.
    if let Outcome::Fallback(n) = &t.outcome {
        assert!(!n.is_empty(), "the layout changed without a word\n{text}");
    }
    if let Outcome::Refused(m) = &t.outcome {
        panic!("refused: {m}\n{text}");
    }
    let enc = String::from_utf8(t.encrypted).expect("text");
    for m in markers {
        assert!(!enc.contains(m.as_str()), "{m} survived encryption\n{enc}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300)
    ))]

    #[test]
    fn generated_yaml_reads_right_and_round_trips(tree in g_tree(), layout in g_layout()) {
        let (text, want, markers, comments) = yaml_doc(&tree, &layout);
        check_generated(Format::Yaml, &text, &want, &markers, &comments);
    }

    /// The walked check passes only what the whole check passes, on the output and on
    /// the output with a byte changed, comments and all.
    #[test]
    fn generated_yaml_is_walked_only_where_the_whole_check_agrees(
        tree in g_tree(),
        layout in g_layout(),
        at in any::<prop::sample::Index>(),
    ) {
        let (text, ..) = yaml_doc(&tree, &layout);
        let Ok(doc) = parse("t", Format::Yaml, text.as_bytes().to_vec()) else {
            return Ok(());
        };
        let Ok(sealed) = encrypt_document(Format::Yaml, "t", &doc, &key(), &mut metadata()) else {
            return Ok(());
        };
        walked_matches_whole(Format::Yaml, &doc, &sealed.bytes);
        let mut changed = sealed.bytes.to_vec();
        let i = at.index(changed.len());
        changed[i] = match changed[i] {
            b'A' => b'B',
            b'\n' => b' ',
            _ => b'A',
        };
        walked_matches_whole(Format::Yaml, &doc, &changed);
    }

    /// The walked check of JSON passes only what the whole check passes, on the output
    /// and on the output with a byte changed; without a value in clear it takes every
    /// output (a ciphertext holds no escape).
    #[test]
    fn generated_json_is_walked_only_where_the_whole_check_agrees(
        tree in g_tree(),
        indent in prop_oneof![Just(None), Just(Some("  ")), Just(Some("\t"))],
        escapes in any::<bool>(),
        clear in any::<bool>(),
        at in any::<prop::sample::Index>(),
    ) {
        let mut n = 0;
        let value = json_value(&tree, &mut n, &mut Vec::new(), escapes);
        let mut root = match value {
            Value::Map(m) if !m.is_empty() => m,
            other => vec![("root".into(), other)],
        };
        if clear {
            root.push(("k_unencrypted".into(), json_value(&tree, &mut n, &mut Vec::new(), escapes)));
        }
        let mut text = String::new();
        crate::format::json::json(&mut text, &Value::Map(root), indent, 0);
        let doc = parse("t", Format::Json, text.as_bytes().to_vec()).expect("parses");
        let sealed = encrypt_document(Format::Json, "t", &doc, &key(), &mut metadata())
            .expect("encrypts");
        let said = walked_matches_whole(Format::Json, &doc, &sealed.bytes);
        if !clear {
            prop_assert!(said.iter().all(Option::is_some), "not taken\n{}", text);
        }
        let mut changed = sealed.bytes.to_vec();
        let i = at.index(changed.len());
        changed[i] = match changed[i] {
            b'A' => b'B',
            b'"' | b'\n' => b' ',
            _ => b'A',
        };
        walked_matches_whole(Format::Json, &doc, &changed);
    }

    /// The walked check of dotenv and INI passes only what the whole check passes, on
    /// the output and on the output with a byte changed; it takes every dotenv output,
    /// and INI's without values in `"""` or backticks.
    #[test]
    fn generated_dotenv_and_ini_are_walked_only_where_the_whole_check_agrees(
        lines in prop::collection::vec((0u8..4, "[ -~]{0,12}"), 0..12),
        crlf in any::<bool>(),
        final_newline in any::<bool>(),
        at in any::<prop::sample::Index>(),
    ) {
        for format in [Format::Dotenv, Format::Ini] {
            let (text, ..) = flat_doc(format, &lines, crlf, final_newline);
            let doc = parse("t", format, text.as_bytes().to_vec()).expect("parses");
            let sealed = encrypt_document(format, "t", &doc, &key(), &mut metadata())
                .expect("encrypts");
            let said = walked_matches_whole(format, &doc, &sealed.bytes);
            // INI values in `"""` or backticks are the whole check's.
            if format == Format::Dotenv || !(text.contains('`') || text.contains("\"\"\"")) {
                prop_assert!(said.iter().all(Option::is_some), "not taken\n{:?}", text);
            }
            let mut changed = sealed.bytes.to_vec();
            let i = at.index(changed.len());
            changed[i] = match changed[i] {
                b'A' => b'B',
                b'=' | b'\n' => b'#',
                b']' => b' ',
                _ => b'A',
            };
            walked_matches_whole(format, &doc, &changed);
        }
    }

    #[test]
    fn generated_json_round_trips(tree in g_tree(), indent in prop_oneof![Just(None), Just(Some("  ")), Just(Some("\t"))], escapes in any::<bool>()) {
        let mut n = 0;
        let mut markers = Vec::new();
        let value = json_value(&tree, &mut n, &mut markers, escapes);
        let root = match value {
            Value::Map(_) => value,
            other => Value::Map(vec![("root".into(), other)]),
        };
        let mut text = String::new();
        crate::format::json::json(&mut text, &root, indent, 0);
        check_generated(Format::Json, &text, &root, &markers, &[]);
    }

    #[test]
    fn generated_dotenv_and_ini_round_trip(
        lines in prop::collection::vec((0u8..4, "[ -~]{0,12}"), 0..12),
        crlf in any::<bool>(),
        final_newline in any::<bool>(),
    ) {
        for format in [Format::Dotenv, Format::Ini] {
            let (text, want, markers, comments) = flat_doc(format, &lines, crlf, final_newline);
            check_generated(format, &text, &want, &markers, &comments);
        }
    }

    #[test]
    fn flipped_bytes_never_give_a_wrong_value(
        tree in g_tree(),
        format in prop_oneof![Just(Format::Yaml), Just(Format::Json), Just(Format::Dotenv), Just(Format::Ini), Just(Format::Binary)],
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut n = 0;
        let mut markers = Vec::new();
        let text = match format {
            Format::Yaml => yaml_doc(&tree, &g_layout_plain()).0,
            Format::Json => {
                let v = json_value(&tree, &mut n, &mut markers, true);
                let root = match v { Value::Map(_) => v, other => Value::Map(vec![("r".into(), other)]) };
                let mut t = String::new();
                crate::format::json::json(&mut t, &root, Some("  "), 0);
                t
            }
            Format::Binary => "\u{0}\u{1}binary zq1-x \u{ff}".to_string(),
            _ => flat_doc(format, &[(0, "a b".into()), (1, "c".into()), (2, "x".into())], false, true).0,
        };
        let t = trip(format, text.as_bytes());
        if let Outcome::Refused(_) = t.outcome { return Ok(()); }
        let original = parse("t", format, text.into_bytes()).expect("parses");
        let mut bytes = t.encrypted.clone();
        for (at, b) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= b.max(1);
        }
        let Ok((doc, meta, _)) = read_metadata("t", format, bytes) else { return Ok(()); };
        let Ok(opened) = open_with_key("t", format, doc, meta, key(), OpenOptions::default()) else { return Ok(()); };
        // It opened: every value is what was written (comments and layout may differ;
        // as in sops, nothing protects the key of a null or empty value).
        let got = values(&opened.doc, &|i| opened.typed(i));
        let want = values(&original, &|i| (original.leaves[i].ty, original.value(i)));
        prop_assert!(got == want, "a flipped file opened with other values");
        let _ = opened.render();
    }
}

/// Every value that carries data, with its key path: what a flipped byte must not change.
pub(super) fn values<'d>(
    doc: &'d Document,
    typed: &dyn Fn(usize) -> (ScalarType, &'d [u8]),
) -> Vec<(Vec<String>, ScalarType, Vec<u8>)> {
    let mut out: Vec<(Vec<String>, ScalarType, Vec<u8>)> = (0..doc.leaves.len())
        .filter(|&i| doc.leaves[i].kind == LeafKind::Value)
        .map(|i| {
            let (ty, v) = typed(i);
            (
                doc.leaves[i].path.iter().map(|k| k.to_string()).collect(),
                ty,
                v.to_vec(),
            )
        })
        .filter(|(_, ty, v)| *ty != ScalarType::Null && !v.is_empty())
        .collect();
    out.sort_by_key(|(p, ..)| p.clone());
    out
}

pub(super) fn g_layout_plain() -> Layout {
    Layout {
        flow: vec![false],
        comments: vec![(true, false)],
        flow_breaks: vec![false],
        indent: 2,
        top_flow: false,
        doc_start: false,
        doc_end: false,
        crlf: false,
        final_newline: true,
        unicode: false,
    }
}

/// A generated tree as JSON values; every string is a unique marker.
pub(super) fn json_value(g: &G, n: &mut usize, markers: &mut Vec<String>, escapes: bool) -> Value {
    let s = |t: ScalarType, v: String| Value::Scalar(t, Zeroizing::new(v));
    match g {
        G::Map(items) => Value::Map(
            items
                .iter()
                .map(|i| {
                    *n += 1;
                    (format!("k{n}"), json_value(i, n, markers, escapes))
                })
                .collect(),
        ),
        G::Seq(items) => Value::Seq(
            items
                .iter()
                .map(|i| json_value(i, n, markers, escapes))
                .collect(),
        ),
        G::Scalar(sc) => match sc {
            Sc::Int(i) => s(ScalarType::Int, i.to_string()),
            Sc::Float(_, v) if v.is_finite() => s(ScalarType::Float, format!("{v:?}")),
            Sc::Bool(b) => s(ScalarType::Bool, b.to_string()),
            Sc::Null => s(ScalarType::Null, String::new()),
            _ => {
                *n += 1;
                let m = format!("zq{n}-x");
                markers.push(m.clone());
                s(
                    ScalarType::Str,
                    if escapes {
                        format!("{m} \"é\"\n\t\\/\u{1}")
                    } else {
                        m
                    },
                )
            }
        },
    }
}

/// A generated dotenv or INI file from (kind, text) lines: 0 a value, 1 a comment,
/// 2 a blank line, 3 (INI) a new section.
pub(super) fn flat_doc(
    format: Format,
    lines: &[(u8, String)],
    crlf: bool,
    final_newline: bool,
) -> (String, Value, Vec<String>, Vec<String>) {
    let mut text = String::new();
    let mut markers = Vec::new();
    let mut comments = Vec::new();
    let mut sections: Vec<(String, Vec<(String, Value)>)> = Vec::new();
    let mut flat: Vec<(String, Value)> = Vec::new();
    let ini = format == Format::Ini;
    if ini {
        text.push_str("[s0]\n");
        sections.push(("s0".into(), Vec::new()));
    }
    for (n, (kind, extra)) in lines.iter().enumerate() {
        let extra = extra.trim();
        match kind {
            1 => {
                let c = format!(" cm{n}-x {extra}");
                let c = if ini { c.trim_start().to_string() } else { c };
                text.push_str(if ini { "; " } else { "#" });
                text.push_str(&c);
                text.push('\n');
                markers.push(format!("cm{n}-x"));
                comments.push(c);
            }
            2 => text.push('\n'),
            3 if ini => {
                text.push_str(&format!("[s{}]\n", n + 1));
                sections.push((format!("s{}", n + 1), Vec::new()));
            }
            _ => {
                let m = format!("zq{n}-x");
                markers.push(m.clone());
                let v = format!("{m} {extra}").trim_end().to_string();
                let k = format!("K{n}");
                if ini {
                    // go-ini takes `;` and `#` for a comment, quotes around a value and a
                    // final `\` for its own: such a value is written in backticks.
                    let mut v = v.replace('`', "_");
                    if !crlf && n % 4 == 3 {
                        // Over two lines in `"""` or backticks: go-ini keeps the break.
                        v = format!("{m}\n{extra}");
                        match n % 8 {
                            3 => text.push_str(&format!("{k} = \"\"\"{v}\"\"\"\n")),
                            _ => {
                                v = v.replace('`', "_");
                                text.push_str(&format!("{k} = `{v}`\n"));
                            }
                        }
                    } else if v.contains([';', '#', '"', '\'', '\\']) {
                        text.push_str(&format!("{k} = `{v}`\n"));
                    } else {
                        text.push_str(&format!("{k} = {v}\n"));
                    }
                    let last = sections.last_mut().expect("a section");
                    last.1
                        .push((k, Value::Scalar(ScalarType::Str, Zeroizing::new(v))));
                } else {
                    text.push_str(&format!("{k}={v}\n"));
                    let value = v.replace("\\n", "\n");
                    flat.push((k, Value::Scalar(ScalarType::Str, Zeroizing::new(value))));
                }
            }
        }
    }
    if !final_newline {
        text.pop();
    }
    if crlf {
        text = text.replace('\n', "\r\n");
    }
    let value = if ini {
        Value::Map(
            sections
                .into_iter()
                .map(|(name, e)| (name, Value::Map(e)))
                .collect(),
        )
    } else {
        Value::Map(flat)
    };
    (text, value, markers, comments)
}
