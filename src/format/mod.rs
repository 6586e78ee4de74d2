//! File formats. Each store parses text into a [`Document`] whose leaves know their
//! spans, renders a single value back in the format's syntax, and writes the metadata
//! block. Whole-file re-serialisation is used only to convert between formats.

use std::path::Path;

use zeroize::Zeroizing;

use crate::tree::{Document, Leaf, MetaValue, ScalarType};

pub mod binary;
pub mod dotenv;
pub mod emit;
pub mod ini;
pub mod json;
pub mod yaml;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
    Dotenv,
    Ini,
    Binary,
}

impl Format {
    /// By file name, as sops does: anything unknown is binary.
    pub fn from_path(path: &Path) -> Format {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default()
            .to_ascii_lowercase();
        match ext.as_str() {
            "yaml" | "yml" => Format::Yaml,
            "json" => Format::Json,
            "env" => Format::Dotenv,
            "ini" => Format::Ini,
            _ if name == ".env" || name.starts_with(".env.") => Format::Dotenv,
            _ => Format::Binary,
        }
    }

    pub fn from_name(name: &str) -> Option<Format> {
        Some(match name {
            "yaml" | "yml" => Format::Yaml,
            "json" => Format::Json,
            "dotenv" | "env" => Format::Dotenv,
            "ini" => Format::Ini,
            "binary" => Format::Binary,
            _ => return None,
        })
    }

    pub fn store(self) -> &'static dyn Store {
        match self {
            Format::Yaml => &yaml::YamlStore,
            Format::Json | Format::Binary => &json::JsonStore,
            Format::Dotenv => &dotenv::DotenvStore,
            Format::Ini => &ini::IniStore,
        }
    }
}

/// A format's syntax, as the sops engine needs it.
pub trait Store: Sync {
    /// Parse text into leaves and structure. The error is a one-line message that names
    /// the line and column where one is known.
    fn parse(&self, source: Zeroizing<String>) -> Result<Document, String>;

    /// The source text for a decrypted value at `leaf`'s place.
    fn render_plain(
        &self,
        doc: &Document,
        leaf: &Leaf,
        ty: ScalarType,
        value: &str,
    ) -> Result<String, String>;

    /// What goes before and after an `ENC[...]` string at `leaf`'s place (quotes).
    fn enc_quotes(&self, leaf: &Leaf) -> (&'static str, &'static str);

    /// Where to insert the metadata of document `doc_index`, and the text to insert.
    fn render_metadata(
        &self,
        doc: &Document,
        doc_index: usize,
        meta: &MetaValue,
    ) -> (usize, String);

    /// Serialise a whole plaintext tree (for `--output-type` and `--extract`).
    fn emit(&self, value: &emit::Value) -> Result<Zeroizing<String>, String>;
}
