//! `cargo bench --bench core`: encrypt and decrypt a generated YAML file of 10,000
//! values and a 10 MiB binary file, in the library and through the built binary; and
//! a thousand files of 25 values, as a checkout's filter opens them.
//! Prints the median of several runs; the aims are in the README.

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use coffer::cipher::DataKey;
use coffer::format::Format;
use coffer::metadata::Metadata;
use coffer::sops;

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn time<T>(n: usize, mut f: impl FnMut() -> T) -> Duration {
    black_box(f());
    median(
        (0..n)
            .map(|_| {
                let t = Instant::now();
                black_box(f());
                t.elapsed()
            })
            .collect(),
    )
}

/// One line of results: median times and throughput.
fn report(kind: &str, name: &str, bytes: usize, t_enc: Duration, t_dec: Duration) {
    let mb = bytes as f64 / 1e6;
    let (e, d) = (t_enc.as_secs_f64(), t_dec.as_secs_f64());
    println!(
        "{kind}  {name:<22} encrypt {:>8.1} ms ({:>6.0} MB/s)   decrypt {:>8.1} ms ({:>6.0} MB/s)",
        e * 1e3,
        mb / e,
        d * 1e3,
        mb / d
    );
}

fn yaml_10k() -> Vec<u8> {
    let mut s = String::from("# generated: 1,000 services x 10 values\n");
    for i in 0..1000 {
        s.push_str(&format!("service_{i}:\n"));
        for j in 0..10 {
            s.push_str(&format!("  key_{j}: value-{i}-{j}-{}\n", "x".repeat(j * 3)));
        }
    }
    s.into_bytes()
}

fn binary_10m() -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..10 * 1024 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn metadata() -> Metadata {
    Metadata {
        lastmodified: "2026-01-01T00:00:00Z".into(),
        version: Some("3.9.4".into()),
        ..Default::default()
    }
}

fn bench_lib(name: &str, format: Format, plain: &[u8], n: usize) {
    let key = DataKey::generate();
    let enc = sops::encrypt_plain(name, format, plain.to_vec(), &key, &mut metadata())
        .expect("encrypts")
        .bytes;
    let t_enc = time(n, || {
        sops::encrypt_plain(name, format, plain.to_vec(), &key, &mut metadata()).expect("encrypts")
    });
    let t_dec = time(n, || {
        let (doc, meta, _) = sops::read_metadata(name, format, enc.to_vec()).expect("parses");
        sops::open_with_key(
            name,
            format,
            doc,
            meta,
            key.clone(),
            sops::OpenOptions::default(),
        )
        .expect("opens")
        .plaintext()
        .expect("renders")
    });
    report("library", name, plain.len(), t_enc, t_dec);
}

/// The size of file `scripts/bench-git` checks out: a comment and 24 values of 40
/// characters under two keys, about 1.3 KB.
fn yaml_small(i: usize) -> Vec<u8> {
    let mut s = format!("# service {i}\ndatabase:\n");
    for j in 0..12 {
        s.push_str(&format!("  key_{j}: {:040x}\n", i * 1000 + j));
    }
    s.push_str("api:\n");
    for j in 0..12 {
        s.push_str(&format!("  token_{j}: tok-{:032x}\n", i * 1000 + j));
    }
    s.into_bytes()
}

/// A thousand such files opened one by one as the filter's smudge opens each (its
/// output laid out as the file and read back), the data key known: the per-file cost
/// a checkout's workers pay, against the per-value cost of the large file.
fn bench_small_files(n: usize) {
    let key = DataKey::generate();
    let files: Vec<(String, Vec<u8>)> = (0..1000)
        .map(|i| {
            let name = format!("secrets/{i:04}.yaml");
            let plain = yaml_small(i);
            let enc = sops::encrypt_plain(&name, Format::Yaml, plain, &key, &mut metadata())
                .expect("encrypts")
                .bytes;
            (name, enc.to_vec())
        })
        .collect();
    let bytes: usize = files.iter().map(|(_, e)| e.len()).sum();
    let t = time(n, || {
        for (name, enc) in &files {
            let (doc, meta, _) =
                sops::read_metadata(name, Format::Yaml, enc.clone()).expect("parses");
            let opened = sops::open_with_key(
                name,
                Format::Yaml,
                doc,
                meta,
                key.clone(),
                Default::default(),
            )
            .expect("opens");
            black_box(opened.into_output(Format::Yaml).expect("renders"));
        }
    });
    println!(
        "library  1,000 files of 25 values    open each {:>6.1} µs ({} KB sealed in all)",
        t.as_secs_f64() * 1e6 / files.len() as f64,
        bytes / 1000
    );
}

fn bench_cli(name: &str, plain: &[u8], n: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = env!("CARGO_BIN_EXE_coffer");
    let run = |args: &[&str]| {
        let out = Command::new(bin)
            .args(args)
            .env("HOME", dir.path())
            .current_dir(dir.path())
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let recipient = String::from_utf8(run(&["keygen"]).stdout)
        .expect("utf-8")
        .trim()
        .to_string();
    std::fs::write(dir.path().join(name), plain).expect("writes");
    let enc = format!("{name}.enc");
    let t_enc = time(n, || {
        run(&[
            "encrypt",
            "--age",
            &recipient,
            "--input-type",
            if name.ends_with(".yaml") {
                "yaml"
            } else {
                "binary"
            },
            "-o",
            &enc,
            name,
        ])
    });
    let out = format!("{name}.out");
    let t_dec = time(n, || {
        run(&[
            "decrypt",
            "--input-type",
            if name.ends_with(".yaml") {
                "yaml"
            } else {
                "binary"
            },
            "-o",
            &out,
            &enc,
        ])
    });
    assert_eq!(std::fs::read(dir.path().join(&out)).expect("reads"), plain);
    report("process", name, plain.len(), t_enc, t_dec);
}

fn main() {
    // `cargo test --benches` runs this with --test: stay quick there. Other words name
    // the benchmarks to run (`cargo bench --bench core -- files`): those whose name
    // holds one.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--test");
    let n = if quick { 1 } else { 11 };
    let words: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let runs = |name: &str| words.is_empty() || words.iter().any(|w| name.contains(w.as_str()));
    let yaml = yaml_10k();
    let bin = binary_10m();
    if runs("library yaml") {
        bench_lib("10k-values.yaml", Format::Yaml, &yaml, n);
    }
    if runs("library binary") {
        bench_lib("10MiB.bin", Format::Binary, &bin, n);
    }
    if runs("library files") {
        bench_small_files(n);
    }
    if runs("process yaml") {
        bench_cli("10k-values.yaml", &yaml, n);
    }
    if runs("process binary") {
        bench_cli("10MiB.bin", &bin, n);
    }
}
