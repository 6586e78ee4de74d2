//! git's long-running filter process protocol (`filter.<driver>.process`): one process
//! serves every file of a checkout or commit, so data keys are unwrapped once.

use std::io::{self, BufReader, BufWriter, Read, Write};

use super::filter::Filter;
use super::pktline::{self, Packet};

/// Serve requests until git closes stdin. Per-file failures are reported to git as
/// `status=error` and the process carries on; protocol errors end it.
pub fn serve(filter: &mut Filter, input: impl Read, output: impl Write) -> io::Result<()> {
    let mut r = BufReader::new(input);
    let mut w = BufWriter::new(output);
    handshake(&mut r, &mut w)?;
    loop {
        // A request: header lines, flush, content packets, flush.
        let first = match pktline::read(&mut r)? {
            None => return Ok(()),
            Some(Packet::Flush) => continue,
            Some(Packet::Data(d)) => d,
        };
        let mut headers = vec![String::from_utf8_lossy(&first)
            .trim_end_matches('\n')
            .to_string()];
        while let Some(line) = pktline::read_text(&mut r)? {
            headers.push(line);
        }
        let mut content = Vec::new();
        loop {
            match pktline::read(&mut r)? {
                Some(Packet::Data(d)) => content.extend_from_slice(&d),
                Some(Packet::Flush) => break,
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "git closed the pipe mid-request",
                    ))
                }
            }
        }
        let value = |key: &str| {
            headers
                .iter()
                .find_map(|h| h.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
                .map(str::to_string)
        };
        let command = value("command").unwrap_or_default();
        let path = value("pathname").unwrap_or_default();
        let result = match command.as_str() {
            "clean" => filter.clean(&path, content),
            "smudge" => filter.smudge(&path, content),
            other => Err(crate::Error::Git(format!(
                "unknown filter command {other:?}"
            ))),
        };
        for note in filter.notes.drain(..) {
            eprintln!("coffer: warning: {}", crate::error::one_line(&note));
        }
        match result {
            Ok(out) => {
                pktline::write_text(&mut w, "status=success")?;
                pktline::flush(&mut w)?;
                pktline::write_data(&mut w, &out)?;
                pktline::flush(&mut w)?;
                // The status list after the content: empty, so success stands.
                pktline::flush(&mut w)?;
            }
            Err(e) => {
                eprintln!("coffer: {}", crate::error::one_line(&e.to_string()));
                // Exactly one flush after an error status, or git loses sync.
                pktline::write_text(&mut w, "status=error")?;
                pktline::flush(&mut w)?;
            }
        }
        w.flush()?;
    }
}

fn handshake(r: &mut impl Read, w: &mut impl Write) -> io::Result<()> {
    let bad = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("filter handshake: {what}"),
        )
    };
    if pktline::read_text(r)?.as_deref() != Some("git-filter-client") {
        return Err(bad("expected git-filter-client"));
    }
    let mut versions = Vec::new();
    while let Some(line) = pktline::read_text(r)? {
        versions.push(line);
    }
    if !versions.iter().any(|v| v == "version=2") {
        return Err(bad("git does not offer version 2"));
    }
    pktline::write_text(w, "git-filter-server")?;
    pktline::write_text(w, "version=2")?;
    pktline::flush(w)?;
    // git waits for this answer before it sends its capabilities.
    w.flush()?;
    let mut offered = Vec::new();
    while let Some(line) = pktline::read_text(r)? {
        offered.push(line);
    }
    // Answer with what git offered and coffer supports; never more.
    for cap in ["capability=clean", "capability=smudge"] {
        if offered.iter().any(|o| o == cap) {
            pktline::write_text(w, cap)?;
        }
    }
    pktline::flush(w)?;
    w.flush()
}
