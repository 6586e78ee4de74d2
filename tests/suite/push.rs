//! `push` and `migrate` against the local AWS endpoint: plans, idempotent applies, tags,
//! pruning, ECS output, partial failures, and the move off S3.

use super::common::*;
use super::moto::{ok, run, run_as, Moto};

const ENV_FILE: &str = "API_KEY=key-one\nDB_PASSWORD=hunter2\nPORT=5432\n";

/// Plan and report text never carry a value of the file.
fn assert_no_values(out: &std::process::Output, values: &[&str]) {
    let all = format!("{}{}", stdout(out), stderr(out));
    for v in values {
        assert!(!all.contains(v), "{v:?} was printed:\n{all}");
    }
}

/// A git repository in the sandbox, so `coffer:source` is the path in it.
fn repo(sb: &Sandbox) {
    assert_success(&sb.git_in(".", &["init", "-q"]), &["git init"]);
}

const EACH: &[&str] = &[
    "push",
    "deploy/prod.env",
    "--to",
    "secretsmanager",
    "--prefix",
    "prod/web/",
    "--each",
];

fn with<'a>(base: &[&'a str], more: &[&'a str]) -> Vec<&'a str> {
    base.iter().chain(more).copied().collect()
}

#[test]
fn push_each_creates_tags_and_a_second_push_creates_no_version() {
    let moto = Moto::start();
    let sb = Sandbox::new();
    repo(&sb);
    sb.encrypted("deploy/prod.env", ENV_FILE);

    // The dry run plans everything and writes nothing.
    let out = ok(&sb, &moto, &with(EACH, &["--dry-run"]));
    assert_eq!(
        stdout(&out),
        "+ prod/web/API_KEY\n+ prod/web/DB_PASSWORD\n+ prod/web/PORT\n\
         Plan: 3 to create, 0 to update, 0 unchanged, 0 to delete.\n"
    );
    assert!(moto.secret("prod/web/API_KEY").is_none());
    assert_eq!(moto.calls("secretsmanager.CreateSecret"), 0);

    let out = ok(&sb, &moto, EACH);
    assert_no_values(&out, &["key-one", "hunter2"]);
    assert_eq!(moto.secret_value("prod/web/DB_PASSWORD"), "hunter2");
    assert_eq!(moto.secret_value("prod/web/PORT"), "5432");
    let state = moto.secret("prod/web/API_KEY").unwrap();
    assert!(state.tags.contains(&("managed-by".into(), "coffer".into())));
    assert!(
        state
            .tags
            .contains(&("coffer:source".into(), "deploy/prod.env".into())),
        "{:?}",
        state.tags
    );

    // Again: nothing differs, so nothing is written and no version appears.
    let writes =
        || moto.calls("secretsmanager.CreateSecret") + moto.calls("secretsmanager.PutSecretValue");
    let before = writes();
    let out = ok(&sb, &moto, EACH);
    assert_eq!(
        stdout(&out),
        "  prod/web/API_KEY (unchanged)\n  prod/web/DB_PASSWORD (unchanged)\n  prod/web/PORT (unchanged)\n\
         Plan: 0 to create, 0 to update, 3 unchanged, 0 to delete.\n"
    );
    assert_eq!(writes(), before);
    for k in ["API_KEY", "DB_PASSWORD", "PORT"] {
        assert_eq!(moto.secret_versions(&format!("prod/web/{k}")), 1, "{k}");
    }

    // One value changes: one update, one new version of that secret only.
    sb.ok(&["set", "deploy/prod.env", "[\"API_KEY\"]", "\"key-two\""]);
    let out = ok(&sb, &moto, EACH);
    assert_eq!(
        stdout(&out),
        "~ prod/web/API_KEY (value changed)\n  prod/web/DB_PASSWORD (unchanged)\n  prod/web/PORT (unchanged)\n\
         Plan: 0 to create, 1 to update, 2 unchanged, 0 to delete.\n"
    );
    assert!(stderr(&out).contains("updated prod/web/API_KEY"));
    assert_no_values(&out, &["key-one", "key-two"]);
    assert_eq!(moto.secret_value("prod/web/API_KEY"), "key-two");
    assert_eq!(moto.secret_versions("prod/web/API_KEY"), 2);
    assert_eq!(moto.secret_versions("prod/web/PORT"), 1);

    // Back to the first value: a new version again (the token includes the version it
    // replaces, so AWS does not take it for a retry of the first write).
    sb.ok(&["set", "deploy/prod.env", "[\"API_KEY\"]", "\"key-one\""]);
    ok(&sb, &moto, EACH);
    assert_eq!(moto.secret_value("prod/web/API_KEY"), "key-one");
    assert_eq!(moto.secret_versions("prod/web/API_KEY"), 3);
}

#[test]
fn push_whole_file_as_one_json_secret_and_emit_ecs_arns() {
    let moto = Moto::start();
    let sb = Sandbox::new();
    sb.encrypted(
        "prod.yaml",
        "db:\n  password: pw1\n  port: 5432\ntoken: tok\nenabled: true\n",
    );
    let args = [
        "push",
        "prod.yaml",
        "--to",
        "secretsmanager",
        "--name",
        "prod/app",
        "--description",
        "web app",
        "--tag",
        "team=web",
        "--emit",
        "ecs",
    ];
    let out = ok(&sb, &moto, &args);
    let stored: serde_json::Value = serde_json::from_str(&moto.secret_value("prod/app")).unwrap();
    assert_eq!(
        stored,
        serde_json::json!({"db": {"password": "pw1", "port": 5432}, "token": "tok", "enabled": true})
    );
    let state = moto.secret("prod/app").unwrap();
    assert!(state.tags.contains(&("team".into(), "web".into())));
    // The plan went to stderr; stdout is the ECS list, with ARNs of the real secret.
    assert!(stderr(&out).contains("+ prod/app\n"), "{}", stderr(&out));
    let ecs: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let arn = &state.arn;
    assert_eq!(
        ecs,
        serde_json::json!([
            {"name": "DB", "valueFrom": format!("{arn}:db::")},
            {"name": "TOKEN", "valueFrom": format!("{arn}:token::")},
            {"name": "ENABLED", "valueFrom": format!("{arn}:enabled::")},
        ])
    );
    // A second run: unchanged, no version, and the same ECS list from the listed ARN.
    let again = ok(&sb, &moto, &args);
    assert_eq!(moto.secret_versions("prod/app"), 1);
    assert_eq!(stdout(&again), stdout(&out));

    // --each: one ARN per value, each the ARN of its own secret.
    let out = ok(
        &sb,
        &moto,
        &[
            "push",
            "prod.yaml",
            "--to",
            "secretsmanager",
            "--prefix",
            "app/",
            "--each",
            "--emit",
            "ecs",
        ],
    );
    let ecs: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let arn = |n: &str| moto.secret(n).unwrap().arn;
    assert_eq!(
        ecs,
        serde_json::json!([
            {"name": "DB_PASSWORD", "valueFrom": arn("app/db/password")},
            {"name": "DB_PORT", "valueFrom": arn("app/db/port")},
            {"name": "TOKEN", "valueFrom": arn("app/token")},
            {"name": "ENABLED", "valueFrom": arn("app/enabled")},
        ])
    );
    assert_eq!(moto.secret_value("app/enabled"), "true");
}

#[test]
fn push_to_ssm_writes_securestring_parameters_under_the_path() {
    let moto = Moto::start();
    let sb = Sandbox::new();
    sb.encrypted(
        "prod.yaml",
        "db:\n  password: pw1\n  port: 5432\nhosts:\n  - a.example\n  - b.example\n",
    );
    // A parameter that was there before, as a plain String with the same value.
    moto.put_parameter("/prod/web/db/port", "5432", false);
    let args = [
        "push",
        "prod.yaml",
        "--to",
        "ssm",
        "--path",
        "/prod/web",
        "--kms-key-id",
        "alias/aws/ssm",
    ];
    let out = ok(&sb, &moto, &args);
    assert_eq!(
        stdout(&out),
        "+ /prod/web/db/password\n~ /prod/web/db/port (value changed; type becomes SecureString; not created by coffer, so never pruned)\n\
         + /prod/web/hosts/0\n+ /prod/web/hosts/1\n\
         Plan: 3 to create, 1 to update, 0 unchanged, 0 to delete.\n"
    );
    assert_no_values(&out, &["pw1"]);
    assert_eq!(
        moto.parameter("/prod/web/db/password").unwrap(),
        ("pw1".into(), "SecureString".into(), 1)
    );
    assert_eq!(
        moto.parameter("/prod/web/db/port").unwrap(),
        ("5432".into(), "SecureString".into(), 2)
    );
    assert_eq!(moto.parameter("/prod/web/hosts/1").unwrap().0, "b.example");

    // Nothing differs: no put, no new version.
    let puts = moto.calls("AmazonSSM.PutParameter");
    let out = ok(&sb, &moto, &args);
    assert!(stdout(&out).contains("Plan: 0 to create, 0 to update, 4 unchanged, 0 to delete."));
    assert_eq!(moto.calls("AmazonSSM.PutParameter"), puts);
    assert_eq!(moto.parameter("/prod/web/db/password").unwrap().2, 1);

    // Pruning removes what coffer created for this file, not what someone else put there.
    moto.put_parameter("/prod/web/manual", "by-hand", true);
    sb.ok(&["unset", "prod.yaml", "[\"hosts\"]"]);
    let out = ok(&sb, &moto, &[&args[..], &["--prune"]].concat());
    assert!(
        stdout(&out).contains("- /prod/web/hosts/0\n- /prod/web/hosts/1\n"),
        "{}",
        stdout(&out)
    );
    assert!(moto.parameter("/prod/web/hosts/0").is_none());
    assert!(moto.parameter("/prod/web/manual").is_some());
    // Not created by coffer (it was there before), so not pruned either.
    assert!(moto.parameter("/prod/web/db/port").is_some());
}

#[test]
fn prune_deletes_only_coffer_tagged_secrets_of_that_source() {
    let moto = Moto::start();
    let sb = Sandbox::new();
    repo(&sb);
    sb.encrypted("deploy/prod.env", ENV_FILE);
    sb.encrypted("deploy/other.env", "OTHER=x\n");
    ok(&sb, &moto, EACH);
    ok(
        &sb,
        &moto,
        &[
            "push",
            "deploy/other.env",
            "--to",
            "secretsmanager",
            "--prefix",
            "prod/web/",
            "--each",
        ],
    );
    moto.put_secret("prod/web/MANUAL", "by-hand");

    sb.ok(&["unset", "deploy/prod.env", "[\"PORT\"]"]);
    let out = ok(&sb, &moto, &with(EACH, &["--prune", "--dry-run"]));
    assert_eq!(
        stdout(&out),
        "  prod/web/API_KEY (unchanged)\n  prod/web/DB_PASSWORD (unchanged)\n- prod/web/PORT\n\
         Plan: 0 to create, 0 to update, 2 unchanged, 1 to delete.\n"
    );
    assert!(!moto.secret("prod/web/PORT").unwrap().deleted);

    // Without --prune nothing is deleted.
    ok(&sb, &moto, EACH);
    assert!(!moto.secret("prod/web/PORT").unwrap().deleted);

    ok(&sb, &moto, &with(EACH, &["--prune"]));
    let port = moto.secret("prod/web/PORT").unwrap();
    assert!(port.deleted, "scheduled for deletion, still recoverable");
    assert!(!moto.secret("prod/web/OTHER").unwrap().deleted);
    assert!(!moto.secret("prod/web/MANUAL").unwrap().deleted);

    // The key comes back: the secret is restored rather than created again.
    sb.ok(&["set", "deploy/prod.env", "[\"PORT\"]", "\"6543\""]);
    let out = ok(&sb, &moto, EACH);
    assert!(stdout(&out).contains("+ prod/web/PORT (restored from scheduled deletion)\n"));
    assert_eq!(moto.secret_value("prod/web/PORT"), "6543");
    assert_eq!(moto.secret("prod/web/PORT").unwrap().arn, port.arn);

    // --force-delete skips the recovery window.
    sb.ok(&["unset", "deploy/prod.env", "[\"PORT\"]"]);
    ok(&sb, &moto, &with(EACH, &["--prune", "--force-delete"]));
    assert!(moto.secret("prod/web/PORT").is_none());
}

/// `--check` reports what a push would leave behind too (exit 10), with or without
/// `--prune`; a push without it keeps the leftover and says so.
#[test]
fn check_reports_leftovers_that_only_prune_deletes() {
    let moto = Moto::start();
    let sb = Sandbox::new();
    repo(&sb);
    sb.encrypted("deploy/prod.env", ENV_FILE);
    ok(&sb, &moto, EACH);
    sb.ok(&["unset", "deploy/prod.env", "[\"PORT\"]"]);

    let plan = "  prod/web/API_KEY (unchanged)\n  prod/web/DB_PASSWORD (unchanged)\n\
                - prod/web/PORT (would delete with --prune)\n\
                Plan: 0 to create, 0 to update, 2 unchanged, 0 to delete. 1 left over: --prune deletes them.\n";
    let out = run(&sb, &moto, &with(EACH, &["--check"]));
    assert_error(&out, 10, "coffer: 1 change(s) to make");
    assert_eq!(stdout(&out), plan);
    let out = run(&sb, &moto, &with(EACH, &["--check", "--prune"]));
    assert_error(&out, 10, "coffer: 1 change(s) to make");
    assert!(
        stdout(&out).contains("- prod/web/PORT\n"),
        "{}",
        stdout(&out)
    );

    // A push without --prune leaves it, and says so; with --prune, --check is clean.
    let out = ok(&sb, &moto, EACH);
    assert_eq!(stdout(&out), plan);
    assert!(!moto.secret("prod/web/PORT").unwrap().deleted);
    ok(&sb, &moto, &with(EACH, &["--prune"]));
    assert!(moto.secret("prod/web/PORT").unwrap().deleted);
    ok(&sb, &moto, &with(EACH, &["--check"]));
}

/// What Secrets Manager would refuse, or keep broken, fails the plan: an empty or null
/// value, a value over 65,536 bytes. A secret left without a value is given one.
#[test]
fn secrets_manager_limits_fail_the_plan_and_a_valueless_secret_is_repaired() {
    let moto = Moto::start();
    let sb = Sandbox::new();
    repo(&sb);
    let before = moto.requests().len();
    for (plain, why) in [
        (
            "EMPTY=\n".to_string(),
            "deploy/prod.env: EMPTY: is empty (or null), and a Secrets Manager secret needs a value",
        ),
        (
            format!("BIG={}\n", "x".repeat(65_537)),
            "deploy/prod.env: BIG: has 65537 bytes, and a Secrets Manager secret holds at most 65536",
        ),
    ] {
        sb.encrypted("deploy/prod.env", &plain);
        let out = run(&sb, &moto, &with(EACH, &["--dry-run"]));
        assert_error(&out, 1, why);
        assert_eq!(moto.requests().len(), before, "refused before any call");
    }
    sb.write("null.yaml", "token: null\n");
    sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "null.yaml"]);
    let out = run(
        &sb,
        &moto,
        &[
            "push",
            "null.yaml",
            "--to",
            "secretsmanager",
            "--prefix",
            "p/",
            "--each",
        ],
    );
    assert_error(&out, 1, "null.yaml: token: is empty (or null)");

    // A secret created with no value (by hand, or by an older push): read as no value,
    // and the push writes one.
    let c = aws_sdk_secretsmanager::Client::new(&moto.sdk_config());
    Moto::rt()
        .block_on(c.create_secret().name("prod/web/API_KEY").send())
        .unwrap();
    sb.encrypted("deploy/prod.env", ENV_FILE);
    let out = ok(&sb, &moto, EACH);
    assert!(
        stdout(&out).contains("~ prod/web/API_KEY (value changed"),
        "{}",
        stdout(&out)
    );
    assert_eq!(moto.secret_value("prod/web/API_KEY"), "key-one");
    let out = ok(&sb, &moto, &with(EACH, &["--check"]));
    assert!(stdout(&out).contains("3 unchanged"), "{}", stdout(&out));
}

#[test]
fn a_failure_part_way_is_reported_and_a_rerun_completes() {
    let moto = Moto::start();
    let sb = Sandbox::new();
    repo(&sb);
    sb.encrypted("deploy/prod.env", ENV_FILE);
    let (id, secret) = moto.user("deployer", &["secretsmanager:PutSecretValue"]);
    moto.enforce_iam();
    ok(&sb, &moto, EACH);

    // Two new keys and one changed one, pushed by a user who may create but not update.
    sb.ok(&["set", "deploy/prod.env", "[\"API_KEY\"]", "\"key-two\""]);
    sb.ok(&["set", "deploy/prod.env", "[\"NEW_A\"]", "\"a\""]);
    sb.ok(&["set", "deploy/prod.env", "[\"NEW_B\"]", "\"b\""]);
    let deployer = [
        ("AWS_ACCESS_KEY_ID", id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", secret.as_str()),
    ];
    let out = run_as(&sb, &moto, EACH, &deployer);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(9), "{err}");
    assert!(
        err.ends_with("coffer: 1 of 3 change(s) not applied (listed above); the others were. Run the same command again to apply the rest\n"),
        "{err}"
    );
    // moto answers a JSON API's access denial in XML, which the SDK reads as a bare 403.
    assert!(
        err.contains("Not applied:\n  not updated: prod/web/API_KEY: secretsmanager PutSecretValue in us-east-1: HTTP 403 (access denied)\n")
            || err.contains("Not applied:\n  not updated: prod/web/API_KEY: secretsmanager PutSecretValue in us-east-1: AccessDenied"),
        "{err}"
    );
    assert!(
        err.contains("Applied: 2 created, 0 updated, 0 deleted, 2 unchanged."),
        "{err}"
    );
    assert_no_values(&out, &["key-two", "key-one"]);
    assert_eq!(moto.secret_value("prod/web/NEW_A"), "a");
    assert_eq!(moto.secret_value("prod/web/API_KEY"), "key-one");

    // Someone allowed to update runs the same command: only the rest is done.
    let out = ok(&sb, &moto, EACH);
    assert!(
        stdout(&out).contains("Plan: 0 to create, 1 to update, 4 unchanged, 0 to delete."),
        "{}",
        stdout(&out)
    );
    assert_eq!(moto.secret_value("prod/web/API_KEY"), "key-two");
    assert_eq!(moto.secret_versions("prod/web/NEW_A"), 1);
}

#[test]
fn push_refuses_bad_requests_before_calling_aws() {
    let moto = Moto::start();
    let sb = Sandbox::new();
    sb.encrypted("prod.yaml", "db:\n  \"pass word\": x\n");
    sb.encrypted("prod.env", ENV_FILE);
    let out = run(
        &sb,
        &moto,
        &[
            "push",
            "prod.yaml",
            "--to",
            "secretsmanager",
            "--prefix",
            "p/",
            "--each",
        ],
    );
    assert_error(
        &out,
        1,
        "prod.yaml: db.pass word: cannot name it \"p/db/pass word\": a Secrets Manager name has only letters, digits and /_+=.@-",
    );
    let out = run(&sb, &moto, &["push", "prod.env", "--to", "secretsmanager"]);
    // Usage mistakes exit 2, as docs/commands.md says.
    assert_error(
        &out,
        2,
        "--to secretsmanager needs --name NAME (one secret) or --prefix PREFIX --each",
    );
    let out = run(&sb, &moto, &["push", "prod.env", "--to", "ssm"]);
    assert_error(
        &out,
        2,
        "--to ssm needs --path /PATH/ (and no --name or --each)",
    );
    let out = run(
        &sb,
        &moto,
        &[
            "push",
            "prod.env",
            "--to",
            "secretsmanager",
            "--name",
            "x",
            "--prune",
        ],
    );
    assert_error(&out, 2, "--prune needs --each");
    let out = run(
        &sb,
        &moto,
        &["push", "prod.env", "--to", "ssm", "--path", "/aws/x"],
    );
    assert_error(&out, 1, "a parameter name cannot begin with aws or ssm");
    assert!(moto.requests().is_empty(), "{:?}", moto.requests());

    // Reading the remote state fails: one line, nothing applied.
    let out = run_as(
        &sb,
        &moto,
        &[
            "push",
            "prod.env",
            "--to",
            "secretsmanager",
            "--prefix",
            "p/",
            "--each",
        ],
        &[("AWS_ENDPOINT_URL", "http://127.0.0.1:9")],
    );
    assert_error(
        &out,
        1,
        "coffer: secretsmanager ListSecrets p/ in us-east-1: cannot reach Secrets Manager: ",
    );
}

#[test]
fn migrate_s3_then_refs_gives_identical_renders() {
    let moto = Moto::start();
    let sb = Sandbox::new();
    moto.put_object("ecs-generic", "client-management/admins/smpp", "smpp-pass");
    moto.put_object(
        "ecs-generic",
        "client-management/db.json",
        "{\"user\": \"u\"}",
    );
    moto.put_object("ecs-generic", "client-management/", "");
    moto.put_object("ecs-generic", "other/token", "other-token");
    let template = "smpp={{ secret s3://ecs-generic/client-management/admins/smpp }}\n\
        db={{secret s3://ecs-generic/client-management/db.json | base64}}\n\
        other={{ secret s3://ecs-generic/other/token }}\n\
        env={{ secret env://NOPE | default \"d\" }}\n";
    sb.write("deploy/app.tmpl", template);
    let before = ok(&sb, &moto, &["render", "deploy/app.tmpl"]);

    let help = ok(&sb, &moto, &["migrate", "s3", "--help"]);
    assert!(stdout(&help).contains("Nothing is ever deleted from S3"));

    let migrate = [
        "migrate",
        "s3",
        "--bucket",
        "ecs-generic",
        "--prefix",
        "client-management/",
        "--to",
        "secretsmanager",
    ];
    let out = ok(&sb, &moto, &migrate);
    let table = stdout(&out);
    assert!(
        table.contains(
            "s3://ecs-generic/client-management/admins/smpp  ecs-generic/client-management/admins/smpp  123456789012  created, verified"
        ),
        "{table}"
    );
    assert_eq!(
        table.lines().count(),
        3,
        "a header and two objects:\n{table}"
    );
    assert_no_values(&out, &["smpp-pass"]);
    assert_eq!(
        moto.secret_value("ecs-generic/client-management/admins/smpp"),
        "smpp-pass"
    );
    let tags = moto
        .secret("ecs-generic/client-management/db.json")
        .unwrap()
        .tags;
    assert!(tags.contains(&(
        "coffer:source".into(),
        "s3://ecs-generic/client-management/db.json".into()
    )));
    // The objects are still there, and S3 was never asked to delete.
    assert_eq!(
        moto.object("ecs-generic", "client-management/admins/smpp")
            .unwrap(),
        "smpp-pass"
    );
    assert!(!moto.requests().iter().any(|r| r.contains("DELETE")));

    // A rerun finds everything in place.
    let out = ok(&sb, &moto, &migrate);
    assert!(stdout(&out).contains("already there, verified"));
    assert_eq!(
        moto.secret_versions("ecs-generic/client-management/admins/smpp"),
        1
    );

    // The dry run of refs lists and writes nothing.
    let refs = [
        "migrate",
        "refs",
        "deploy/app.tmpl",
        "--from",
        "s3",
        "--to",
        "awsSecret",
    ];
    let out = ok(&sb, &moto, &[&refs[..], &["--dry-run"]].concat());
    assert!(stdout(&out).contains("changed deploy/app.tmpl:1:"));
    assert_eq!(sb.read_str("deploy/app.tmpl"), template);

    let out = ok(&sb, &moto, &refs);
    assert_eq!(
        stdout(&out),
        "changed deploy/app.tmpl:1: s3://ecs-generic/client-management/admins/smpp -> awsSecret://ecs-generic/client-management/admins/smpp\n\
         changed deploy/app.tmpl:2: s3://ecs-generic/client-management/db.json -> awsSecret://ecs-generic/client-management/db.json\n\
         left    deploy/app.tmpl:3: s3://ecs-generic/other/token (no secret ecs-generic/other/token)\n"
    );
    assert_eq!(
        sb.read_str("deploy/app.tmpl"),
        "smpp={{ secret awsSecret://ecs-generic/client-management/admins/smpp }}\n\
        db={{secret awsSecret://ecs-generic/client-management/db.json | base64}}\n\
        other={{ secret s3://ecs-generic/other/token }}\n\
        env={{ secret env://NOPE | default \"d\" }}\n"
    );
    let after = ok(&sb, &moto, &["render", "deploy/app.tmpl"]);
    assert_eq!(stdout(&after), stdout(&before));

    // --name-prefix replaces the bucket part, in both commands alike.
    ok(
        &sb,
        &moto,
        &[
            "migrate",
            "s3",
            "--bucket",
            "ecs-generic",
            "--prefix",
            "other/",
            "--to",
            "secretsmanager",
            "--name-prefix",
            "app/",
        ],
    );
    assert_eq!(moto.secret_value("app/other/token"), "other-token");
    let out = ok(
        &sb,
        &moto,
        &[&refs[..], &["--name-prefix", "app/"]].concat(),
    );
    assert!(stdout(&out).contains("-> awsSecret://app/other/token"));
    let after = ok(&sb, &moto, &["render", "deploy/app.tmpl"]);
    assert_eq!(stdout(&after), stdout(&before));
}

#[test]
fn migrate_s3_reports_what_failed_and_a_rerun_finishes() {
    let moto = Moto::start();
    let sb = Sandbox::new();
    moto.put_object("team-vault", "prod/a", "a-1");
    moto.put_object("team-vault", "prod/b", "b-1");
    let migrate = [
        "migrate",
        "s3",
        "--bucket",
        "team-vault",
        "--prefix",
        "prod/",
        "--to",
        "secretsmanager",
    ];
    let (id, secret) = moto.user("migrator", &["secretsmanager:PutSecretValue"]);
    moto.enforce_iam();
    ok(&sb, &moto, &migrate);

    // One object changed and one is new; this user may create but not update.
    moto.put_object("team-vault", "prod/a", "a-2");
    moto.put_object("team-vault", "prod/c", "c-1");
    let out = run_as(
        &sb,
        &moto,
        &migrate,
        &[
            ("AWS_ACCESS_KEY_ID", id.as_str()),
            ("AWS_SECRET_ACCESS_KEY", secret.as_str()),
        ],
    );
    assert_eq!(out.status.code(), Some(9), "{}", stderr(&out));
    let table = stdout(&out);
    assert!(
        table.contains("s3://team-vault/prod/a  team-vault/prod/a  123456789012  FAILED: "),
        "{table}"
    );
    assert!(
        table.contains(
            "s3://team-vault/prod/b  team-vault/prod/b  123456789012  already there, verified"
        ),
        "{table}"
    );
    assert!(
        table
            .contains("s3://team-vault/prod/c  team-vault/prod/c  123456789012  created, verified"),
        "{table}"
    );
    assert!(stderr(&out).contains("1 of 3 change(s) not applied"));
    assert_eq!(moto.secret_value("team-vault/prod/a"), "a-1");

    let out = ok(&sb, &moto, &migrate);
    assert!(stdout(&out)
        .contains("s3://team-vault/prod/a  team-vault/prod/a  123456789012  updated, verified"));
    assert_eq!(moto.secret_value("team-vault/prod/a"), "a-2");
    assert_eq!(moto.secret_versions("team-vault/prod/c"), 1);
}

#[test]
fn a_terminal_gets_a_progress_bar_and_a_pipe_gets_lines() {
    let moto = Moto::start();
    let sb = Sandbox::new();
    let plain: String = (1..=12).map(|i| format!("K{i}=v{i}\n")).collect();
    sb.encrypted("many.env", &plain);
    // `script` gives coffer a terminal on stderr (stdout goes to /dev/null).
    let mut cmd = std::process::Command::new("script");
    cmd.env_clear()
        .env("PATH", path_with_coffer())
        .env("HOME", sb.home())
        .env("SHELL", "/bin/sh")
        .env("TERM", "xterm")
        .envs(moto.env())
        .current_dir(sb.path("."))
        .args([
            "-qec",
            "coffer push many.env --to secretsmanager --prefix tty/ --each >/dev/null",
            "/dev/null",
        ]);
    let out = cmd.output().unwrap();
    assert_success(&out, &["push on a terminal"]);
    let screen = stdout(&out);
    assert!(screen.contains(" 12/12"), "{screen:?}");
    assert!(!screen.contains("created tty/K1\r\n"), "{screen:?}");
    assert_eq!(moto.secret_value("tty/K12"), "v12");

    let out = ok(
        &sb,
        &moto,
        &[
            "push",
            "many.env",
            "--to",
            "secretsmanager",
            "--prefix",
            "pipe/",
            "--each",
        ],
    );
    assert!(stderr(&out).contains("created pipe/K1\n"));
    assert!(!stderr(&out).contains("12/12"));
}
