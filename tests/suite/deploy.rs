//! Deploy-time secrets: exec, exec-file, render and export output, with real processes.

use super::common::*;

#[test]
fn exec_puts_values_in_the_child_environment_and_returns_its_exit_code() {
    let sb = Sandbox::new();
    sb.encrypted("prod.env", "DB_PASSWORD=hunter2\nMODE=prod\n");
    sb.encrypted(
        "secrets.yaml",
        "db:\n  password: from-yaml\n  port: 5432\nflags: [a, b]\nok: true\n",
    );
    let out = sb.ok(&[
        "exec",
        "prod.env",
        "--",
        "sh",
        "-c",
        "echo \"$DB_PASSWORD $MODE\"",
    ]);
    assert_eq!(stdout(&out), "hunter2 prod\n");
    // Nested keys are flattened and upper-cased under the prefix; later files win.
    let out = sb.ok(&[
        "exec",
        "prod.env",
        "--file",
        "secrets.yaml",
        "--prefix",
        "APP_",
        "--",
        "env",
    ]);
    let env = stdout(&out);
    for line in [
        "APP_DB_PASSWORD=from-yaml",
        "APP_DB_PORT=5432",
        "APP_FLAGS_0=a",
        "APP_FLAGS_1=b",
        "APP_OK=true",
        "APP_MODE=prod",
    ] {
        assert!(
            env.lines().any(|l| l == line),
            "{line} missing from:\n{env}"
        );
    }
    // The child's exit code is coffer's.
    assert_eq!(
        sb.run(&["exec", "prod.env", "--", "sh", "-c", "exit 42"])
            .status
            .code(),
        Some(42)
    );
    // --pristine: nothing but the file's values.
    let out = sb.ok(&["exec", "--pristine", "prod.env", "--", "/usr/bin/env"]);
    let printed = stdout(&out);
    let mut names: Vec<&str> = printed
        .lines()
        .map(|l| l.split('=').next().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["DB_PASSWORD", "MODE"]);
}

#[test]
fn exec_refuses_invalid_names_unless_told_and_never_shows_values() {
    let sb = Sandbox::new();
    sb.encrypted("bad.yaml", "good_key: 1\n\"bad-key\": secret-value\n");
    let out = sb.run(&["exec", "bad.yaml", "--", "true"]);
    assert_error(&out, 1, "not valid environment variable names: BAD-KEY");
    assert!(!stderr(&out).contains("secret-value"));
    let out = sb.ok(&[
        "exec",
        "--skip-invalid",
        "bad.yaml",
        "--",
        "sh",
        "-c",
        "echo $GOOD_KEY",
    ]);
    assert_eq!(stdout(&out), "1\n");
    assert!(stderr(&out).contains("left out keys that are not valid variable names: BAD-KEY"));
}

#[test]
fn exec_passes_signals_to_the_child() {
    // coffer replaces itself with the command, so a signal to coffer's pid is the child's.
    let sb = Sandbox::new();
    sb.encrypted("p.env", "A=1\n");
    let child = sb
        .cmd()
        .args([
            "exec",
            "p.env",
            "--",
            "sh",
            "-c",
            "trap 'exit 7' TERM; sleep 5 & wait",
        ])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(7));
}

#[test]
fn exec_file_gives_a_private_file_and_removes_it() {
    let sb = Sandbox::new();
    sb.write("tls.key", "-----BEGIN KEY-----\nabc\n");
    sb.ok(&[
        "encrypt",
        "--age",
        &sb.recipient,
        "-o",
        "tls.key.enc",
        "--input-type",
        "binary",
        "tls.key",
    ]);
    let report = sb.path("report");
    let script = format!("stat -c %a \"$1\" > {r}; stat -c %a \"$(dirname \"$1\")\" >> {r}; echo \"$1\" >> {r}; cat \"$1\"; exit 3", r = report.display());
    let out = sb.run(&[
        "exec-file",
        "--input-type",
        "binary",
        "tls.key.enc",
        "--",
        "sh",
        "-c",
        &script,
        "sh",
        "{}",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(stdout(&out), "-----BEGIN KEY-----\nabc\n");
    let report = sb.read_str("report");
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(&lines[..2], ["600", "700"]);
    assert!(
        !std::path::Path::new(lines[2]).exists(),
        "the plaintext file was not removed"
    );
}

#[test]
fn export_output_quotes_for_the_shell() {
    let sb = Sandbox::new();
    sb.encrypted("s.yaml", "db:\n  password: \"it's $HOME\"\n");
    let out = sb.ok(&["decrypt", "--output-type", "export", "s.yaml"]);
    assert_eq!(stdout(&out), "export DB_PASSWORD='it'\\''s $HOME'\n");
    let shell = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{}printf %s \"$DB_PASSWORD\"", stdout(&out)))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(shell.stdout).unwrap(), "it's $HOME");
}

#[test]
fn render_fills_references_once_and_writes_privately() {
    let sb = Sandbox::new();
    sb.encrypted("secrets.yaml", "db:\n  password: hunter2\napi: key-123\n");
    sb.write(
        "app.conf.tmpl",
        "password={{ secret file://secrets.yaml#db.password }}\napi={{secret file://secrets.yaml#[\"api\"]}}\nuser={{ secret env://APP_USER }}\nb64={{ secret env://APP_USER | base64 }}\nopt={{ secret env://MISSING | default \"none\" }}\nliteral=\\{{ secret env://APP_USER }}\n",
    );
    let out = sb.run_with(
        &["render", "app.conf.tmpl", "-o", "app.conf"],
        &[("APP_USER", "deploy")],
    );
    assert_success(&out, &["render"]);
    assert_eq!(
        sb.read_str("app.conf"),
        "password=hunter2\napi=key-123\nuser=deploy\nb64=ZGVwbG95\nopt=none\nliteral={{ secret env://APP_USER }}\n"
    );
    assert_eq!(mode(&sb.path("app.conf")), 0o600);
}

#[test]
fn render_writes_nothing_when_any_reference_fails_and_check_lists_them_all() {
    let sb = Sandbox::new();
    sb.encrypted("secrets.yaml", "db:\n  password: hunter2\n");
    sb.write("t.tmpl", "a={{ secret file://secrets.yaml#db.password }}\nb={{ secret env://NOPE }}\nc={{ secret file://secrets.yaml#db.missing }}\nd={{ secret awsSecret://prod/web }}\n");
    let out = sb.run(&["render", "t.tmpl", "-o", "out.conf"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!sb.path("out.conf").exists(), "no output file on failure");
    let err = stderr(&out);
    for needle in [
        "t.tmpl:2: env://NOPE: environment variable NOPE is not set",
        "t.tmpl:3: file://secrets.yaml#db.missing:",
        "t.tmpl:4: awsSecret://prod/web:",
    ] {
        assert!(err.contains(needle), "{needle:?} missing from:\n{err}");
    }
    assert!(!err.contains("hunter2"), "a value leaked into the report");
    let check = sb.run(&["render", "--check", "t.tmpl"]);
    assert_eq!(check.status.code(), Some(1));
    assert!(check.stdout.is_empty());
    sb.write(
        "ok.tmpl",
        "a={{ secret file://secrets.yaml#db.password }}\n",
    );
    let ok = sb.ok(&["render", "--check", "ok.tmpl"]);
    assert!(ok.stdout.is_empty());
}

#[test]
fn render_reads_secrets_manager_ssm_and_s3_at_a_local_aws_endpoint() {
    let moto = super::moto::Moto::start();
    let sb = Sandbox::new();
    moto.put_secret("prod/web", "{\"password\": \"pw-json\", \"user\": \"web\"}");
    let first = moto.put_secret("plain/token", "token-v1");
    moto.put_secret("plain/token", "token-v2");
    moto.put_parameter("/prod/web/token", "ssm-secure", true);
    moto.put_parameter("flat-name", "ssm-flat", false);
    moto.put_object("ecs-generic", "client-management/admins/smpp", "smpp-pass");
    sb.write(
        "t.tmpl",
        format!(
            "json={{{{ secret awsSecret://prod/web#password }}}}\ncurrent={{{{ secret awsSecret://plain/token }}}}\nprevious={{{{ secret awsSecret://plain/token?stage=AWSPREVIOUS }}}}\nbyid={{{{ secret awsSecret://plain/token?version={first} }}}}\nssm={{{{ secret ssm:///prod/web/token }}}}\nflat={{{{ secret ssm://flat-name }}}}\ns3={{{{ secret s3://ecs-generic/client-management/admins/smpp }}}}\n"
        ),
    );
    let out = super::moto::run(&sb, &moto, &["render", "t.tmpl"]);
    assert_success(&out, &["render with AWS sources"]);
    assert_eq!(
        stdout(&out),
        "json=pw-json\ncurrent=token-v2\nprevious=token-v1\nbyid=token-v1\nssm=ssm-secure\nflat=ssm-flat\ns3=smpp-pass\n"
    );
    // A missing secret fails the whole render, named with its line.
    sb.write(
        "bad.tmpl",
        "a={{ secret awsSecret://prod/web#password }}\nb={{ secret awsSecret://nope }}\n",
    );
    let out = super::moto::run(&sb, &moto, &["render", "bad.tmpl", "-o", "bad.out"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("bad.tmpl:2: awsSecret://nope: secretsmanager GetSecretValue in us-east-1: ResourceNotFoundException"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("pw-json"));
    assert!(!sb.path("bad.out").exists());
}

#[test]
fn exec_and_exec_file_do_not_hand_the_command_coffer_s_keys() {
    let sb = Sandbox::new();
    sb.encrypted("prod.env", "DB_PASSWORD=hunter2\n");
    let identities = sb.read_str("home/.config/coffer/age/keys.txt");
    let identity = identities
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap()
        .to_string();
    let key_file = sb.key_file();
    let key_env = [
        ("COFFER_AGE_KEY", identity.as_str()),
        ("SOPS_AGE_KEY_FILE", key_file.to_str().unwrap()),
        ("COFFER_MFA_TOKEN", "123456"),
        ("SOPS_PGP_FP", "ABCDEF"),
        ("UNRELATED", "stays"),
    ];
    let shown = |out: &std::process::Output| -> Vec<String> {
        stdout(out)
            .lines()
            .map(|l| l.split('=').next().unwrap().to_string())
            .filter(|n| {
                n.contains("AGE") || n.contains("MFA") || n.contains("PGP") || n == "UNRELATED"
            })
            .collect()
    };
    let out = sb.run_with(&["exec", "prod.env", "--", "env"], &key_env);
    assert_success(&out, &["exec"]);
    assert_eq!(shown(&out), ["UNRELATED"]);
    let out = sb.run_with(&["exec-file", "prod.env", "--", "env"], &key_env);
    assert_success(&out, &["exec-file"]);
    assert_eq!(shown(&out), ["UNRELATED"]);
    // Asked for, they pass.
    let out = sb.run_with(
        &["exec", "--keep-key-env", "prod.env", "--", "env"],
        &key_env,
    );
    let mut kept = shown(&out);
    kept.sort();
    assert_eq!(
        kept,
        [
            "COFFER_AGE_KEY",
            "COFFER_MFA_TOKEN",
            "SOPS_AGE_KEY_FILE",
            "SOPS_PGP_FP",
            "UNRELATED"
        ]
    );
}

/// Keys that flatten to one variable name are never settled by order.
#[test]
fn exec_refuses_keys_that_flatten_to_one_name() {
    let sb = Sandbox::new();
    sb.encrypted("a.yaml", "a_b: one\na:\n  b: two\nc: three\n");
    let out = sb.run(&["exec", "a.yaml", "--", "env"]);
    assert_error(
        &out,
        1,
        "a.yaml: the keys a_b and a.b are both the variable A_B",
    );
    let out = sb.ok(&["exec", "--skip-invalid", "a.yaml", "--", "env"]);
    let env = stdout(&out);
    assert!(env.contains("C=three\n") && !env.contains("A_B="), "{env}");
    assert!(stderr(&out).contains("left out variables more than one key would set: A_B"));
}

/// The export format refuses a value a shell would cut short.
#[test]
fn export_refuses_a_nul_in_a_value() {
    let sb = Sandbox::new();
    sb.encrypted("a.json", "{\"A\": \"x\\u0000y\", \"B\": \"ok\"}\n");
    let out = sb.run(&["decrypt", "--output-type", "export", "a.json"]);
    assert_error(&out, 1, "a.json: the value of A holds a NUL byte");
    assert_eq!(stdout(&out), "");
}

/// Terraform reads `TF_VAR_name` for the variable `name`, case and all: under that
/// prefix keys keep their case, and `--upper` asks for upper case.
#[test]
fn exec_under_tf_var_keeps_the_case_of_terraform_variable_names() {
    let sb = Sandbox::new();
    sb.encrypted(
        "tf.yaml",
        "db_password: hunter2\nRegion: eu-west-1\nnetwork:\n  cidrBlock: 10.0.0.0/16\n",
    );
    let names = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["exec", "--pristine"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["tf.yaml", "--", "/usr/bin/env"]);
        let mut out: Vec<String> = stdout(&sb.ok(&all)).lines().map(str::to_string).collect();
        out.sort();
        out
    };
    assert_eq!(
        names(&["--prefix", "TF_VAR_"]),
        [
            "TF_VAR_Region=eu-west-1",
            "TF_VAR_db_password=hunter2",
            "TF_VAR_network_cidrBlock=10.0.0.0/16"
        ]
    );
    assert_eq!(
        names(&["--prefix", "TF_VAR_", "--upper"]),
        [
            "TF_VAR_DB_PASSWORD=hunter2",
            "TF_VAR_NETWORK_CIDRBLOCK=10.0.0.0/16",
            "TF_VAR_REGION=eu-west-1"
        ]
    );
    // Any other prefix upper-cases, as before.
    assert_eq!(
        names(&["--prefix", "APP_"]),
        [
            "APP_DB_PASSWORD=hunter2",
            "APP_NETWORK_CIDRBLOCK=10.0.0.0/16",
            "APP_REGION=eu-west-1"
        ]
    );
}
