//! The write path against every construct the formats allow: table tests of what is
//! kept exactly, what falls back to the canonical layout and what is refused, property
//! tests over generated documents, and byte flips of encrypted files.

use proptest::prelude::*;
use zeroize::Zeroizing;

use super::verify::{Compare, Content};
use super::*;
use crate::tree::Value;

use crate::error::ErrorKind;

fn key() -> DataKey {
    DataKey::from_slice(&[9u8; 32]).expect("32 bytes")
}

fn metadata() -> Metadata {
    Metadata {
        lastmodified: "2026-01-01T00:00:00Z".into(),
        version: Some(metadata::SOPS_VERSION.into()),
        ..Default::default()
    }
}

/// What writing `text` encrypted and reading it back gave.
enum Outcome {
    /// Decrypts to the input byte for byte.
    Exact,
    /// Written in the canonical layout; the warning.
    Fallback(String),
    /// Refused; the message.
    Refused(String),
}

struct Trip {
    outcome: Outcome,
    encrypted: Vec<u8>,
}

/// Encrypt `text`, open the result with the data key, render its plaintext, and check
/// the invariants every write must keep whatever the outcome.
fn trip(format: Format, text: &[u8]) -> Trip {
    let refused = |e: Error| {
        assert!(
            matches!(e.kind(), ErrorKind::Syntax | ErrorKind::EncryptedOrNot),
            "a refusal is a syntax or unsupported-input error, got {e}"
        );
        Trip {
            outcome: Outcome::Refused(e.to_string()),
            encrypted: Vec::new(),
        }
    };
    let doc = match parse("t", format, text.to_vec()) {
        Ok(d) => d,
        Err(e) => return refused(e),
    };
    let sealed = match encrypt_document(format, "t", &doc, &key(), &mut metadata()) {
        Ok(s) => s,
        Err(e) => return refused(e),
    };
    let (doc2, meta, _) = read_metadata("t", format, sealed.bytes.to_vec())
        .expect("what encrypt_document returns parses");
    let opened =
        open_with_key("t", format, doc2, meta, key(), false).expect("and opens with its key");
    let plain = opened.render().expect("and decrypts");
    let original = Content::of_plain(&doc);
    let back = parse("t", format, plain.bytes.to_vec()).expect("the plaintext parses");
    assert!(
        original
            .difference(
                &doc,
                &Content::of_plain(&back),
                Compare::Full,
                format == Format::Json
            )
            .is_none(),
        "the plaintext holds what the input held"
    );
    let outcome = match sealed.fallback.clone().or(plain.fallback) {
        None if *plain.bytes == text => Outcome::Exact,
        Some(note) => Outcome::Fallback(note),
        None => Outcome::Fallback(String::new()),
    };
    Trip {
        outcome,
        encrypted: sealed.bytes.to_vec(),
    }
}

fn exact(format: Format, text: &str) {
    match trip(format, text.as_bytes()).outcome {
        Outcome::Exact => {}
        Outcome::Fallback(n) => panic!("{text:?}: fell back: {n}"),
        Outcome::Refused(m) => panic!("{text:?}: refused: {m}"),
    }
}

/// Kept as data, in another spelling (`\u00e9` for `é`), and said: never silently.
fn respelled(format: Format, text: &str) {
    match trip(format, text.as_bytes()).outcome {
        Outcome::Fallback(n) => assert!(
            n.contains("will decrypt to the same value") && n.contains("written another way"),
            "{text:?}: warning {n:?}"
        ),
        Outcome::Exact => panic!("{text:?}: kept exactly"),
        Outcome::Refused(m) => panic!("{text:?}: refused: {m}"),
    }
}

/// At most the start of a long text, for messages.
fn head(text: &str) -> &str {
    &text[..text.char_indices().nth(300).map_or(text.len(), |(i, _)| i)]
}

fn fallback(format: Format, text: &str, note: &str) {
    match trip(format, text.as_bytes()).outcome {
        Outcome::Fallback(n) => assert!(n.contains(note), "{text:?}: warning {n:?}"),
        Outcome::Exact => panic!("{text:?}: kept exactly, a fallback was expected"),
        Outcome::Refused(m) => panic!("{text:?}: refused: {m}"),
    }
}

fn refused(format: Format, text: &str, message: &str) {
    let text_head = head(text);
    match trip(format, text.as_bytes()).outcome {
        Outcome::Refused(m) => assert!(m.contains(message), "{text_head:?}: message {m:?}"),
        Outcome::Exact => panic!("{text_head:?}: accepted, a refusal was expected"),
        Outcome::Fallback(n) => panic!("{text_head:?}: fell back ({n}), a refusal was expected"),
    }
}

#[test]
fn yaml_constructs_kept_exactly() {
    for text in [
        "a: 1\nb: two\n",
        "a: 1\nb: two",
        "# head\na: x # trailing\n\n# foot\n",
        "a:\n  b:\n    c: deep\n  d: [1, 2]\n",
        "nested: {x: 1, y: [a, b]}\n",
        "l:\n  - a\n  - {k: v}\n  - - x\n    - y\n",
        "lit: |\n  line1\n  line2\nnext: 1\n",
        "strip: |-\n  line1\n  line2\nnext: 1\n",
        "keep: |+\n  line1\n\nnext: 1\n",
        "end: |\n  line1\n  line2\n",
        // A root mapping indented under `---`: the metadata goes at its keys' column.
        "---\n  a: 1\n\n  b:\n    c: [x, y]\n",
        // CloudFormation's tags before flow sequences, and an empty tagged value.
        "zone: !Select [ 0, !GetAZs ]\ncond: !Equals [ !Ref Env, prod ]\n",
        // A block keeps its header and indentation, around one line of ciphertext.
        "one: |-\n  one line\nnext: 1\n",
        "folded: >\n    one folded line\nstrip: >-\n  x\n",
        "l:\n  - |+\n    kept\n\n  - |\n      deeper\n",
        "q: 'single # not a comment'\nd: \"tab\\tnew\\nline\"\n",
        "u: ünïcödé 日本\n",
        "t: 2024-01-02T03:04:05Z\n",
        "f: 1.5e+10\ng: 0.25\ni: -7\nb: true\nn: null\n",
        "a: 1\r\nb: two\r\n",
        "---\na: 1\n",
        "a: 1\n---\nb: 2\n",
    ] {
        exact(Format::Yaml, text);
    }
}

#[test]
fn yaml_constructs_that_fall_back_name_what_was_not_kept() {
    fallback(
        Format::Yaml,
        "{\"password\": \"x\", \"n\": 1}\n",
        "flow mapping at line 1",
    );
    fallback(Format::Yaml, "{a: 1,\n b: 2}\n", "flow mapping at line 1");
    fallback(
        Format::Yaml,
        "lit: | # why\n  a\nnext: 1\n",
        "a comment after a block scalar's indicator at line 1",
    );
    fallback(
        Format::Yaml,
        "list:\n-\titem\n",
        "a tab after `-`, `?` or `:`, or in indentation (sops cannot read it) at line 2",
    );
}

#[test]
fn yaml_block_scalars_at_the_end_without_a_line_break_keep_their_value() {
    // Without a final line break a block's value has none either (YAML 1.2, 8.1.1.2),
    // so `|` and `|+` there come back as `|-`, which says the same.
    respelled(Format::Yaml, "a: 1\nlit: |\n  line1\n  last");
    respelled(Format::Yaml, "a: 1\nlit: |+\n  line1\n  last");
    exact(Format::Yaml, "a: 1\nlit: |-\n  line1\n  last");
    // A kept block of blank lines only has no line to indent by: quoted, the rest kept.
    respelled(Format::Yaml, "a:\n  - |+\n\n  - x\n");
}

#[test]
fn yaml_inputs_refused_with_their_line() {
    refused(
        Format::Yaml,
        "? [k1]\n: v1\nother: v2\n",
        "line 1, column 3: complex mapping keys",
    );
    refused(
        Format::Yaml,
        "[a, b]: v\nz: secret\n",
        "complex mapping keys",
    );
    refused(
        Format::Yaml,
        "big: 123456789012345678901234567890\n",
        "64 bits",
    );
    refused(
        Format::Yaml,
        "sops: x\na: 1\n",
        "the key `sops` (line 1) is reserved",
    );
    refused(Format::Yaml, "- a\n- b\n", "sequences are not supported");
    fallback(
        Format::Yaml,
        "a: &x 1\nb: *x\n",
        "a YAML alias (expanded into a copy, as sops reads it) at line 2",
    );
    // saphyr bounds flow nesting itself; block nesting is bounded by coffer.
    let flow = format!("a: {}1{}\n", "[".repeat(20_000), "]".repeat(20_000));
    refused(Format::Yaml, &flow, "recursion limit exceeded");
    let block: String = (0..20_000)
        .map(|i| format!("{}k:\n", " ".repeat(i)))
        .collect();
    refused(
        Format::Yaml,
        &format!("{block}{}v: 1\n", " ".repeat(20_000)),
        "nested more than 256 levels",
    );
}

#[test]
fn json_constructs() {
    for text in [
        "{\"a\": 1, \"b\": \"two\"}",
        "{\n    \"a\": 1,\n    \"b\": [true, null, 1.5e10]\n}\n",
        "{\n\t\"a\": {\"b\": \"\\n\\\"q\\\"\"}\n}",
        "{}",
    ] {
        exact(Format::Json, text);
    }
    respelled(Format::Json, "{\"a\": \"caf\\u00e9\"}");
    let deep = format!("{{\"a\":{}1{}}}", "[".repeat(20_000), "]".repeat(20_000));
    refused(Format::Json, &deep, "nested more than 256 levels");
    refused(Format::Json, "{\"sops\": 1}", "reserved");
    refused(Format::Json, "{\"n\": 99999999999999999999}", "64 bits");
}

#[test]
fn dotenv_and_ini_constructs() {
    for text in [
        "A=1\n# comment\n\nB=two words\nC=\n",
        "A=1\r\nB=x\r\n",
        "A=line\\nbreak",
        "# only a comment\n",
    ] {
        exact(Format::Dotenv, text);
    }
    for text in [
        "[s]\nk = v\n; c\nk2 = v2\n",
        "; only a comment\n",
        "top = 1\n[s]\n# hash comment\nk = v",
    ] {
        exact(Format::Ini, text);
    }
}

#[test]
fn a_changed_type_tag_and_a_value_that_is_no_value_of_its_type_fail() {
    let open = |text: &str, ignore_mac: bool| {
        let (doc, meta, _) =
            read_metadata("t", Format::Yaml, text.as_bytes().to_vec()).expect("parses");
        open_with_key("t", Format::Yaml, doc, meta, key(), ignore_mac)
            .err()
            .expect("refused")
    };
    // `"false"` → bool: the MAC sees `False` for `false` and fails, as in sops. `"True"`
    // and `"7"` hash the same as bool and int, but coffer's IVs name the type.
    for (plain, to) in [
        ("false", "bool"),
        ("True", "bool"),
        ("7", "int"),
        ("2024-01-02T03:04:05Z", "time"),
    ] {
        let t = trip(Format::Yaml, format!("a: \"{plain}\"\n").as_bytes());
        let text = String::from_utf8(t.encrypted).expect("text");
        let retyped = text.replacen("type:str", &format!("type:{to}"), 1);
        let err = open(&retyped, true);
        assert_eq!(err.kind(), ErrorKind::Integrity, "{plain}: {err}");
        assert!(
            err.to_string().contains("its type tag was changed"),
            "{plain}: {err}"
        );
    }
    // A value whose plaintext is no value of its type (written so by hand).
    let t = trip(Format::Yaml, b"a: 1\n");
    let text = String::from_utf8(t.encrypted).expect("text");
    let start = text.find("ENC[").expect("a value");
    let end = start + text[start..].find(']').expect("its end") + 1;
    let forged = cipher::encrypt(&key(), "a:", ScalarType::Int, b"abc");
    let err = open(&format!("{}{forged}{}", &text[..start], &text[end..]), true);
    assert_eq!(err.kind(), ErrorKind::Integrity);
    assert!(err.to_string().contains("not a valid int"), "{err}");
}

#[test]
fn metadata_twice_or_not_last_is_refused_on_read() {
    let t = trip(Format::Yaml, b"a: 1\n");
    let text = String::from_utf8(t.encrypted).expect("text");
    for bad in [format!("sops:\n  x: 1\n{text}"), format!("{text}z: 1\n")] {
        let err = read_metadata("t", Format::Yaml, bad.into_bytes())
            .err()
            .expect("refused");
        assert_eq!(err.kind(), ErrorKind::Syntax, "{err}");
    }
}

// ---- Generated documents -------------------------------------------------------------

/// A generated tree: what a YAML reader must find in the text rendered from it.
#[derive(Clone, Debug)]
enum G {
    Map(Vec<G>),
    Seq(Vec<G>),
    Scalar(Sc),
}

#[derive(Clone, Copy, Debug)]
enum Sc {
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

fn g_tree() -> impl Strategy<Value = G> {
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
struct Layout {
    /// Per collection, in order: written in flow style?
    flow: Vec<bool>,
    /// Per item, in order: a comment line before it, a comment after it on its line.
    comments: Vec<(bool, bool)>,
    /// Per flow collection: break lines after its commas.
    flow_breaks: Vec<bool>,
    indent: usize,
    top_flow: bool,
    doc_start: bool,
    doc_end: bool,
    crlf: bool,
    final_newline: bool,
    unicode: bool,
}

fn g_layout() -> impl Strategy<Value = Layout> {
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
struct Render<'l> {
    l: &'l Layout,
    out: String,
    n: usize,
    coll: usize,
    item: usize,
    markers: Vec<String>,
    comments: Vec<String>,
    /// The last thing written is a literal block, whose value depends on the line
    /// break after it.
    ends_with_block: bool,
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
fn yaml_doc(tree: &G, l: &Layout) -> (String, Value, Vec<String>, Vec<String>) {
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
fn same_tree(got: &Value, want: &Value) -> Result<(), String> {
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

fn check_generated(
    format: Format,
    text: &str,
    want: &Value,
    markers: &[String],
    comments: &[String],
) {
    // The parser reads what the text says (the generator is the reference).
    let doc = parse("t", format, text.as_bytes().to_vec())
        .unwrap_or_else(|e| panic!("valid input refused: {e}\n{text}"));
    let got = doc
        .value_of(&doc.docs[0].root, &|i| {
            let l = &doc.leaves[i];
            Ok((
                l.ty,
                Zeroizing::new(l.value_str().unwrap_or_default().to_string()),
            ))
        })
        .expect("text values");
    if let Err(e) = same_tree(&got, want) {
        panic!("misread: {e}\n{text}");
    }
    let found: Vec<&str> = doc
        .comments()
        .iter()
        .map(|&i| doc.leaves[i].value_str().unwrap_or_default())
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
        let Ok(opened) = open_with_key("t", format, doc, meta, key(), false) else { return Ok(()); };
        // It opened: every value is what was written (comments and layout may differ;
        // as in sops, nothing protects the key of a null or empty value).
        let got = values(&opened.doc, &|i| opened.typed(i));
        let want = values(&original, &|i| (original.leaves[i].ty, &original.leaves[i].value[..]));
        prop_assert!(got == want, "a flipped file opened with other values");
        let _ = opened.render();
    }
}

/// Every value that carries data, with its key path: what a flipped byte must not change.
fn values<'d>(
    doc: &'d Document,
    typed: &dyn Fn(usize) -> (ScalarType, &'d [u8]),
) -> Vec<(Vec<String>, ScalarType, Vec<u8>)> {
    let mut out: Vec<(Vec<String>, ScalarType, Vec<u8>)> = (0..doc.leaves.len())
        .filter(|&i| doc.leaves[i].kind == LeafKind::Value)
        .map(|i| {
            let (ty, v) = typed(i);
            (doc.leaves[i].path.clone(), ty, v.to_vec())
        })
        .filter(|(_, ty, v)| *ty != ScalarType::Null && !v.is_empty())
        .collect();
    out.sort_by_key(|(p, ..)| p.clone());
    out
}

fn g_layout_plain() -> Layout {
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
fn json_value(g: &G, n: &mut usize, markers: &mut Vec<String>, escapes: bool) -> Value {
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
fn flat_doc(
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

// ---- The YAML test suite ----------------------------------------------------------------

/// A value of the suite's `in.json` against what coffer read, `None` when they agree.
fn json_differs(got: &Value, want: &serde_json::Value) -> Option<String> {
    use serde_json::Value as J;
    match (got, want) {
        (Value::Map(entries), J::Object(o)) => {
            if entries.len() != o.len() {
                return Some(format!(
                    "{} keys where {} were written",
                    entries.len(),
                    o.len()
                ));
            }
            entries.iter().find_map(|(k, v)| match o.get(k) {
                Some(w) => json_differs(v, w).map(|d| format!("{k}: {d}")),
                None => Some(format!("key {k:?} not in the document")),
            })
        }
        (Value::Seq(items), J::Array(a)) if items.len() == a.len() => items
            .iter()
            .zip(a)
            .enumerate()
            .find_map(|(i, (v, w))| json_differs(v, w).map(|d| format!("[{i}]: {d}"))),
        (Value::Scalar(ty, s), w) => {
            let same = match (ty, w) {
                (ScalarType::Null, J::Null) => true,
                (ScalarType::Bool, J::Bool(b)) => scalar::parse_bool(s) == Some(*b),
                (ScalarType::Int | ScalarType::Float, J::Number(n)) => {
                    scalar::parse_float(s) == n.as_f64()
                }
                (ScalarType::Str, J::String(t)) => s.as_str() == t,
                (ScalarType::Time, J::String(t)) => {
                    scalar::time_canonical(t, false).as_deref() == Some(s.as_str())
                }
                _ => false,
            };
            (!same).then(|| format!("{ty:?} {:?} where {w} was written", s.as_str()))
        }
        _ => Some(format!("a different structure where {want} was written")),
    }
}

/// Every valid document of the YAML test suite (testdata/yaml-test-suite, from
/// yaml/yaml-test-suite's data branch): coffer either refuses it, or reads exactly what
/// the suite says it holds and writes it so that it reads back.
#[test]
fn the_yaml_test_suite_is_read_right_or_refused() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/yaml-test-suite");
    let mut cases: Vec<std::path::PathBuf> = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("suite") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "in.yaml") {
                cases.push(p);
            }
        }
    }
    cases.sort();
    assert!(
        cases.len() > 250,
        "the suite is there ({} cases)",
        cases.len()
    );
    let (mut exact, mut respelled, mut fallback, mut refused) = (0, 0, 0, 0);
    let mut misread = Vec::new();
    let mut reasons = std::collections::BTreeMap::new();
    for case in &cases {
        let id = case
            .parent()
            .expect("dir")
            .strip_prefix(&root)
            .expect("under root")
            .display()
            .to_string();
        let text = std::fs::read(case).expect("in.yaml");
        let json = std::fs::read(case.with_file_name("in.json")).expect("in.json");
        let want: Vec<serde_json::Value> = serde_json::Deserializer::from_slice(&json)
            .into_iter()
            .collect::<Result<_, _>>()
            .expect("in.json");
        let doc = match parse("t", Format::Yaml, text.clone()) {
            Ok(doc) => doc,
            Err(e) => {
                let e = e.to_string();
                let why = e.split(": ").last().unwrap_or_default().to_string();
                *reasons.entry(why).or_insert(0) += 1;
                refused += 1;
                continue;
            }
        };
        // coffer reads a document that is only comments or empty as an empty mapping.
        let got: Vec<Value> = doc
            .docs
            .iter()
            .map(|d| {
                doc.value_of(&d.root, &|i| {
                    let l = &doc.leaves[i];
                    Ok((
                        l.ty,
                        Zeroizing::new(l.value_str().unwrap_or_default().to_string()),
                    ))
                })
                .expect("text")
            })
            .collect();
        let empty =
            |v: &serde_json::Value| v.is_null() || v.as_object().is_some_and(|o| o.is_empty());
        let want: Vec<&serde_json::Value> = want.iter().filter(|v| !empty(v)).collect();
        let got: Vec<&Value> = got
            .iter()
            .filter(|v| !matches!(v, Value::Map(e) if e.is_empty()))
            .collect();
        let difference = if got.len() != want.len() {
            Some(format!(
                "{} documents where {} were written",
                got.len(),
                want.len()
            ))
        } else {
            got.iter().zip(&want).find_map(|(g, w)| json_differs(g, w))
        };
        if let Some(d) = difference {
            misread.push(format!("{id}: {d}"));
            continue;
        }
        match trip(Format::Yaml, &text).outcome {
            Outcome::Exact => exact += 1,
            Outcome::Fallback(note) if note.is_empty() => respelled += 1,
            Outcome::Fallback(_) => fallback += 1,
            Outcome::Refused(m) => {
                *reasons.entry(m).or_insert(0) += 1;
                refused += 1
            }
        }
    }
    for (why, n) in &reasons {
        eprintln!("  refused {n}: {why}");
    }
    eprintln!(
        "yaml-test-suite: {} cases: {exact} kept byte for byte, {respelled} respelled, {fallback} in the canonical layout, {refused} refused, {} misread",
        cases.len(),
        misread.len()
    );
    assert!(misread.is_empty(), "misread:\n{}", misread.join("\n"));
    assert_eq!(respelled, 0, "layouts changed without a word");
}

// ---- The check itself --------------------------------------------------------------------

/// What a broken writer could produce is caught by the check, whatever it is.
#[test]
fn the_check_rejects_what_a_broken_writer_would_write() {
    let text = "# head\na: secret-a\nb: secret-b\nc:\n  d: 1\n";
    let doc = parse("t", Format::Yaml, text.as_bytes().to_vec()).expect("parses");
    let expected = Content::of_plain(&doc);
    let good = String::from_utf8(trip(Format::Yaml, text.as_bytes()).encrypted).expect("text");
    let check = |bytes: &str| {
        verify::encrypted(
            "t",
            Format::Yaml,
            Zeroizing::new(bytes.as_bytes().to_vec()),
            &key(),
            &doc,
            &expected,
            false,
        )
        .map(|back| assert_eq!(&back.bytes[..], bytes.as_bytes(), "given back as it was"))
    };
    assert_eq!(check(&good), Ok(()));
    let value = |key: &str| {
        let line = good
            .lines()
            .find(|l| l.starts_with(&format!("{key}: ENC[")))
            .expect("line");
        line[key.len() + 2..].to_string()
    };
    let (a, b) = (value("a"), value("b"));
    let comment = good
        .lines()
        .find(|l| l.starts_with("#ENC["))
        .expect("comment")
        .to_string();
    for (what, broken) in [
        ("a value left in clear", good.replacen(&a, "secret-a", 1)),
        (
            "a comment left in clear",
            good.replacen(&comment, "# head", 1),
        ),
        (
            "a comment dropped",
            good.replacen(&format!("{comment}\n"), "", 1),
        ),
        (
            "values swapped",
            good.replacen(&a, "X", 1)
                .replacen(&b, &a, 1)
                .replacen("X", &b, 1),
        ),
        ("a key renamed", good.replacen("\nb: ", "\nbb: ", 1)),
        (
            "an entry dropped",
            good.replacen(&format!("b: {b}\n"), "", 1),
        ),
        (
            "a nested value moved up",
            good.replacen("c:\n  d:", "c: {}\nd:", 1),
        ),
        (
            "the metadata dropped",
            good[..good.find("sops:").expect("metadata")].to_string(),
        ),
        ("the text cut", good[..good.len() / 2].to_string()),
    ] {
        assert!(
            check(&broken).is_err(),
            "{what} passed the check:\n{broken}"
        );
    }
}

#[test]
fn empty_comments_and_reserved_names() {
    exact(Format::Yaml, "a: 1\n#\nb: 2 #\n");
    exact(Format::Dotenv, "#\nA=1\n");
    exact(Format::Ini, ";\n[s]\nk = v\n");
    // A plaintext key named like the metadata is not metadata: refused, never taken for
    // an encrypted file (which git's clean filter would pass through in clear).
    for (format, text, line) in [
        (Format::Yaml, "a: 1\nsops:\n  note: hi\n", "line 2"),
        (
            Format::Json,
            "{\"a\": 1, \"sops\": {\"note\": \"hi\"}}",
            "line 1",
        ),
        (Format::Dotenv, "A=1\nsops_note=hi\n", "line 2"),
        (Format::Ini, "[s]\nk = v\n[sops]\nnote = hi\n", "line 3"),
    ] {
        assert!(!format.store().is_encrypted(text.as_bytes()), "{text:?}");
        refused(
            format,
            text,
            &format!("the key `sops` ({line}) is reserved"),
        );
    }
}

#[test]
fn metadata_names_are_bounded_and_placed_as_sops_places_them() {
    for (format, text, message) in [
        (
            Format::Dotenv,
            "A=1\nsops_a__list_99999999=1\n",
            "list index over 1000",
        ),
        (
            Format::Dotenv,
            &format!("A=1\nsops_{}=1\n", "a__map_".repeat(300)),
            "nested too deep",
        ),
        (Format::Dotenv, "sops_version=1\nA=1\n", "not at the end"),
        (
            Format::Dotenv,
            "A=1\nsops_version=1\nsops_version=2\n",
            "there twice",
        ),
        (
            Format::Ini,
            "[sops]\nversion = 1\n[s]\nk = v\n",
            "not the last one",
        ),
    ] {
        let err = parse("t", format, text.as_bytes().to_vec())
            .err()
            .expect("refused");
        assert!(err.to_string().contains(message), "{text:?}: {err}");
    }
}

#[test]
fn conversions_that_would_change_a_value_are_refused() {
    let t = trip(Format::Yaml, b"a: 'x\\ny'\nb: .5\n");
    let (doc, meta, _) = read_metadata("t", Format::Yaml, t.encrypted).expect("parses");
    let opened = open_with_key("t", Format::Yaml, doc, meta, key(), false).expect("opens");
    // dotenv reads `\n` back as a line break: refused rather than changed.
    let err = opened.convert(Format::Dotenv).expect_err("refused");
    assert!(
        err.to_string()
            .contains("cannot be converted so that it reads back"),
        "{err}"
    );
    // JSON cannot spell `.5`: the same float in Go's form.
    let json = opened.convert(Format::Json).expect("converts");
    assert!(
        String::from_utf8_lossy(&json).contains("\"b\": 0.5"),
        "{}",
        String::from_utf8_lossy(&json)
    );
}

/// Encrypted files are found by content: a sops binary file is `{data, sops}` only, and a
/// structured file with an unknown extension is read as the structure it is (rotating it
/// as binary would keep only its `data` value).
#[test]
fn encrypted_files_are_detected_by_content() {
    let sealed = |format: Format, text: &str| {
        let mut md = metadata();
        encrypt_plain("t", format, text.as_bytes().to_vec(), &key(), &mut md)
            .expect("encrypts")
            .bytes
            .to_vec()
    };
    let detect =
        |name: &str, bytes: &[u8]| crate::format::detect(std::path::Path::new(name), bytes);
    let binary = sealed(Format::Binary, "raw\u{1}bytes");
    assert_eq!(detect("blob", &binary), Some(Format::Binary));
    assert_eq!(detect("blob.json", &binary), Some(Format::Json));
    let json = sealed(Format::Json, "{\"data\": \"x\", \"other\": \"y\"}\n");
    assert_eq!(detect("secrets.json.enc", &json), Some(Format::Json));
    let yaml = sealed(Format::Yaml, "data: x\n");
    assert_eq!(detect("config", &yaml), Some(Format::Yaml));
    assert_eq!(
        detect("app.env", &sealed(Format::Dotenv, "A=1\n")),
        Some(Format::Dotenv)
    );
    assert_eq!(detect("plain.yaml", b"sops: is just a word here\n"), None);
    assert_eq!(detect("notes.txt", b"nothing"), None);
}

// ---- The real sops over generated files ------------------------------------------------

/// The sops binary of the test tools (scripts/test installs it and names it).
fn sops_binary() -> std::path::PathBuf {
    let p = std::env::var_os("COFFER_TEST_SOPS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/sops"));
    assert!(
        p.exists(),
        "sops not found at {}: run scripts/test",
        p.display()
    );
    p
}

/// What the real sops reads from an encrypted file: `sops decrypt --output-type TYPE`.
fn sops_decrypt(
    sops: &std::path::Path,
    dir: &std::path::Path,
    name: &str,
    to: &str,
) -> Result<String, String> {
    let out = std::process::Command::new(sops)
        .args(["decrypt", "--output-type", to, name])
        .env_clear()
        .env("HOME", dir)
        .env("SOPS_AGE_KEY_FILE", dir.join("key.txt"))
        .env("SOPS_DISABLE_VERSION_CHECK", "1")
        .current_dir(dir)
        .output()
        .expect("sops runs");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    String::from_utf8(out.stdout).map_err(|e| e.to_string())
}

/// sops's JSON, parsed, without the empty `DEFAULT` section go-ini always has.
fn sops_json(text: &str) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(text).expect("sops prints JSON");
    if let Some(o) = v.as_object_mut() {
        if o.get("DEFAULT")
            .is_some_and(|d| d.as_object().is_some_and(|d| d.is_empty()))
        {
            o.remove("DEFAULT");
        }
    }
    v
}

/// `v` with every number a float and every boolean spelled one way.
fn normalized(v: &Value) -> Value {
    match v {
        Value::Map(e) => Value::Map(e.iter().map(|(k, v)| (k.clone(), normalized(v))).collect()),
        Value::Seq(items) => Value::Seq(items.iter().map(normalized).collect()),
        Value::Scalar(ScalarType::Int | ScalarType::Float, s) => {
            let f = scalar::parse_float(s).or_else(|| scalar::parse_float(&stored_float(s)));
            Value::Scalar(
                ScalarType::Float,
                Zeroizing::new(f.map_or_else(|| s.to_string(), scalar::format_float)),
            )
        }
        Value::Scalar(ScalarType::Bool, s) => Value::Scalar(
            ScalarType::Bool,
            Zeroizing::new(scalar::parse_bool(s).map_or_else(|| s.to_string(), |b| b.to_string())),
        ),
        other => other.clone(),
    }
}

/// A YAML float spelling (`.inf`) as Go spells it.
fn stored_float(s: &str) -> String {
    crate::format::yaml_resolve::stored_form(ScalarType::Float, s)
}

/// The real sops reads every generated file coffer writes as coffer meant it: YAML of
/// every style, JSON with escapes, dotenv and INI with quoting, a few dozen of each (a
/// sops process per case, so fewer than the other generated tests).
#[test]
fn the_real_sops_reads_generated_files_as_coffer_wrote_them() {
    use proptest::test_runner::{Config, TestRunner};
    let sops = sops_binary();
    let dir = tempfile::tempdir().expect("temp dir");
    let id = age::x25519::Identity::generate();
    let secret = secrecy::ExposeSecret::expose_secret(&id.to_string()).to_string();
    std::fs::write(dir.path().join("key.txt"), secret).expect("key");
    let recipient = id.to_public().to_string();
    let cases = std::env::var("SOPS_DIFF_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let runner = || {
        TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        })
    };
    let keyring = {
        let sources = crate::keys::age::IdentitySources {
            files: vec![dir.path().join("key.txt")],
            ..Default::default()
        };
        let age = crate::keys::age::AgeKeys::load(&sources).expect("the identity loads");
        crate::keys::Keyring::new(vec![Box::new(age)])
    };
    let check = |format: Format, text: &str, want: &Value| {
        let doc = parse("t", format, text.as_bytes().to_vec())
            .unwrap_or_else(|e| panic!("valid input refused: {e}\n{text}"));
        let mut md = metadata();
        md.age
            .push(crate::keys::age::wrap(key().expose(), &recipient).expect("wraps"));
        let sealed = encrypt_document(format, "t", &doc, &key(), &mut md)
            .unwrap_or_else(|e| panic!("refused: {e}\n{text}"));
        let name = format!(
            "t.{}",
            match format {
                Format::Yaml => "yaml",
                Format::Json => "json",
                Format::Dotenv => "env",
                _ => "ini",
            }
        );
        std::fs::write(dir.path().join(&name), &*sealed.bytes).expect("written");
        match sops_decrypt(&sops, dir.path(), &name, "json") {
            Ok(read) => {
                if let Some(d) = json_differs(want, &sops_json(&read)) {
                    panic!("sops reads another value: {d}\n{text}");
                }
            }
            // JSON has no infinity: sops's YAML then, read by coffer's YAML reader.
            Err(e) if e.contains("unsupported value") => {
                let read = sops_decrypt(&sops, dir.path(), &name, "yaml")
                    .unwrap_or_else(|e| panic!("sops cannot open coffer's file: {e}\n{text}"));
                let back = parse("sops", Format::Yaml, read.into_bytes()).expect("sops's YAML");
                let got = back
                    .value_of(&back.docs[0].root, &|i| {
                        let l = &back.leaves[i];
                        Ok((
                            l.ty,
                            Zeroizing::new(l.value_str().unwrap_or_default().to_string()),
                        ))
                    })
                    .expect("text values");
                // go-yaml writes an integral float without its point (`2500`).
                if let Err(d) = same_tree(&normalized(&got), &normalized(want)) {
                    panic!("sops reads another value: {d}\n{text}");
                }
            }
            Err(e) => panic!("sops cannot open coffer's file: {e}\n{text}"),
        }
        // And the other way: coffer reads what sops wrote for the same input (sops
        // refuses some inputs coffer takes: then there is nothing to read).
        let input = format!("in.{name}");
        std::fs::write(dir.path().join(&input), text).expect("written");
        let out = std::process::Command::new(&sops)
            .args(["encrypt", "--age", &recipient, &input])
            .env_clear()
            .env("HOME", dir.path())
            .env("SOPS_DISABLE_VERSION_CHECK", "1")
            .current_dir(dir.path())
            .output()
            .expect("sops runs");
        if out.status.success() {
            let opened = open("s", format, out.stdout, &keyring, false)
                .unwrap_or_else(|e| panic!("coffer cannot open sops's file: {e}\n{text}"));
            let got = opened.value(&opened.doc.docs[0].root).expect("values");
            if let Err(d) = same_tree(&normalized(&got), &normalized(want)) {
                panic!("coffer reads sops's file otherwise: {d}\n{text}");
            }
        }
    };
    runner()
        .run(&(g_tree(), g_layout()), |(tree, layout)| {
            let (text, want, _, _) = yaml_doc(&tree, &layout);
            check(Format::Yaml, &text, &want);
            Ok(())
        })
        .unwrap();
    runner()
        .run(&(g_tree(), any::<bool>()), |(tree, escapes)| {
            let mut n = 0;
            let value = json_value(&tree, &mut n, &mut Vec::new(), escapes);
            let root = match value {
                Value::Map(_) => value,
                other => Value::Map(vec![("root".into(), other)]),
            };
            let mut text = String::new();
            crate::format::json::json(&mut text, &root, Some("  "), 0);
            check(Format::Json, &text, &root);
            Ok(())
        })
        .unwrap();
    runner()
        .run(
            &prop::collection::vec((0u8..4, "[ -~]{0,12}"), 1..10),
            |lines| {
                for format in [Format::Dotenv, Format::Ini] {
                    let (text, want, _, _) = flat_doc(format, &lines, false, true);
                    check(format, &text, &want);
                }
                Ok(())
            },
        )
        .unwrap();
}
