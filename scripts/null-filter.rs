// A git process filter that does nothing: every file passes through unchanged. It is
// the floor any process filter pays for git's protocol (scripts/bench-git builds it).
//
// With `--stored-times X` it only moves bytes as a filter whose stored form is X times
// the working file's does (sops's is about five times, for short values): clean
// stores a file with a comment line of `x`s after it, to X times its length, and
// smudge takes that line off again. No other work: the floor for such a filter.
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

/// `content` as the filter stores it (`clean`) or checks it out.
fn filtered(clean: bool, times: Option<f64>, mut content: Vec<u8>) -> Vec<u8> {
    let Some(times) = times else {
        return content;
    };
    if clean {
        let to = (content.len() as f64 * times) as usize;
        if to >= content.len() + 2 {
            content.push(b'#');
            content.resize(to - 1, b'x');
            content.push(b'\n');
        }
    } else if content.ends_with(b"x\n") {
        let body = &content[..content.len() - 1];
        if let Some(at) = body.iter().rposition(|&b| b == b'\n') {
            if content[at + 1] == b'#' {
                content.truncate(at + 1);
            }
        }
    }
    content
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let times = match &args[1..] {
        [flag, x] if flag == "--stored-times" => Some(x.parse::<f64>().expect("a number")),
        _ => None,
    };
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
        let mut clean = false;
        loop {
            match packet(&mut r) {
                None => return,
                Some(None) => break,
                Some(Some(h)) => {
                    headers = true;
                    clean |= h == b"command=clean\n";
                }
            }
        }
        if !headers {
            continue;
        }
        let mut content = Vec::new();
        while let Some(Some(d)) = packet(&mut r) {
            content.extend_from_slice(&d);
        }
        let content = filtered(clean, times, content);
        write(&mut w, b"status=success\n");
        w.write_all(b"0000").unwrap();
        for chunk in content.chunks(65516) {
            write(&mut w, chunk);
        }
        w.write_all(b"00000000").unwrap();
        w.flush().unwrap();
    }
}
