//! `cargo bench --bench core`: encrypt and decrypt a generated YAML file of 10,000
//! values and a 10 MiB binary file, in the library and through the built binary.
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
    // `cargo test --benches` runs this with --test: stay quick there.
    let quick = std::env::args().any(|a| a == "--test");
    let n = if quick { 1 } else { 11 };
    let yaml = yaml_10k();
    let bin = binary_10m();
    bench_lib("10k-values.yaml", Format::Yaml, &yaml, n);
    bench_lib("10MiB.bin", Format::Binary, &bin, n);
    bench_cli("10k-values.yaml", &yaml, n);
    bench_cli("10MiB.bin", &bin, n);
}
