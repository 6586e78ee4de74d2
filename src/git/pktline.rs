//! git's pkt-line framing: four hex digits of length (the header included), `0000` for
//! a flush, at most 65,516 data bytes a packet.

use std::io::{self, Read, Write};

pub const MAX_DATA: usize = 65_516;

/// No derived `Debug`: a data packet may hold a file's plaintext.
#[derive(PartialEq, Eq)]
pub enum Packet {
    Data(Vec<u8>),
    Flush,
}

impl std::fmt::Debug for Packet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Packet::Data(d) => write!(f, "Data(<{} bytes>)", d.len()),
            Packet::Flush => f.write_str("Flush"),
        }
    }
}

/// Read one packet; `Ok(None)` at a clean end of input (between packets).
pub fn read(r: &mut impl Read) -> io::Result<Option<Packet>> {
    let mut head = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = r.read(&mut head[got..])?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "truncated pkt-line header",
                ))
            };
        }
        got += n;
    }
    let len = std::str::from_utf8(&head)
        .ok()
        .and_then(|h| usize::from_str_radix(h, 16).ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad pkt-line length"))?;
    match len {
        0 => Ok(Some(Packet::Flush)),
        1..=3 => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bad pkt-line length",
        )),
        _ => {
            let mut data = vec![0u8; len - 4];
            r.read_exact(&mut data)?;
            Ok(Some(Packet::Data(data)))
        }
    }
}

/// Read a text line packet, without its trailing newline; `None` for a flush.
pub fn read_text(r: &mut impl Read) -> io::Result<Option<String>> {
    match read(r)? {
        Some(Packet::Data(mut d)) => {
            if d.last() == Some(&b'\n') {
                d.pop();
            }
            String::from_utf8(d)
                .map(Some)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "pkt-line is not text"))
        }
        Some(Packet::Flush) => Ok(None),
        None => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "git closed the pipe mid-message",
        )),
    }
}

pub fn write_text(w: &mut impl Write, line: &str) -> io::Result<()> {
    write_data(w, format!("{line}\n").as_bytes())
}

/// Write `data` as one or more packets (no flush).
pub fn write_data(w: &mut impl Write, data: &[u8]) -> io::Result<()> {
    for chunk in data.chunks(MAX_DATA) {
        write!(w, "{:04x}", chunk.len() + 4)?;
        w.write_all(chunk)?;
    }
    Ok(())
}

pub fn flush(w: &mut impl Write) -> io::Result<()> {
    w.write_all(b"0000")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_splits() {
        let mut out = Vec::new();
        write_text(&mut out, "version=2").unwrap();
        flush(&mut out).unwrap();
        assert_eq!(out, b"000eversion=2\n0000");
        let big = vec![7u8; MAX_DATA + 10];
        let mut out = Vec::new();
        write_data(&mut out, &big).unwrap();
        let mut r = &out[..];
        assert_eq!(
            read(&mut r).unwrap(),
            Some(Packet::Data(vec![7u8; MAX_DATA]))
        );
        assert_eq!(read(&mut r).unwrap(), Some(Packet::Data(vec![7u8; 10])));
        assert_eq!(read(&mut r).unwrap(), None);
        assert!(read(&mut &b"00"[..]).is_err());
        assert!(read(&mut &b"0002"[..]).is_err());
    }
}
