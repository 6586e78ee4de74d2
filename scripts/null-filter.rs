// A git process filter that does nothing: every file passes through unchanged. It is
// the floor any process filter pays for git's protocol (scripts/bench-git builds it).
use std::io::{BufReader, BufWriter, Read, Write};

fn packet(r: &mut impl Read) -> Option<Option<Vec<u8>>> {
    let mut head = [0u8; 4];
    r.read_exact(&mut head).ok()?;
    let n = usize::from_str_radix(std::str::from_utf8(&head).ok()?, 16).ok()?;
    if n == 0 {
        return Some(None);
    }
    let mut data = vec![0u8; n - 4];
    r.read_exact(&mut data).ok()?;
    Some(Some(data))
}

fn write(w: &mut impl Write, data: &[u8]) {
    write!(w, "{:04x}", data.len() + 4).unwrap();
    w.write_all(data).unwrap();
}

fn main() {
    let mut r = BufReader::new(std::io::stdin().lock());
    let mut w = BufWriter::new(std::io::stdout().lock());
    while let Some(Some(_)) = packet(&mut r) {}
    write(&mut w, b"git-filter-server\n");
    write(&mut w, b"version=2\n");
    w.write_all(b"0000").unwrap();
    w.flush().unwrap();
    while let Some(Some(_)) = packet(&mut r) {}
    write(&mut w, b"capability=clean\n");
    write(&mut w, b"capability=smudge\n");
    w.write_all(b"0000").unwrap();
    w.flush().unwrap();
    loop {
        let mut headers = false;
        loop {
            match packet(&mut r) {
                None => return,
                Some(None) => break,
                Some(Some(_)) => headers = true,
            }
        }
        if !headers {
            continue;
        }
        let mut content = Vec::new();
        while let Some(Some(d)) = packet(&mut r) {
            content.extend_from_slice(&d);
        }
        write(&mut w, b"status=success\n");
        w.write_all(b"0000").unwrap();
        for chunk in content.chunks(65516) {
            write(&mut w, chunk);
        }
        w.write_all(b"00000000").unwrap();
        w.flush().unwrap();
    }
}
