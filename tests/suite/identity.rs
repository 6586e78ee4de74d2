//! AWS identity as the aws CLI keeps it: STS sessions cached in `~/.aws/cli/cache` and
//! shared with the real aws CLI, one MFA code per device, `role:` targets on an MFA user,
//! unknown profiles, and which profile wins. All against the local endpoint.

use std::process::{Command, Output, Stdio};

use super::common::*;
use super::moto::Moto;

const DEVICE: &str = "arn:aws:iam::123456789012:mfa/alice";
const ADMIN: &str = "arn:aws:iam::222222222222:role/admin";
const PLAIN: &str = "arn:aws:iam::444444444444:role/plain";
/// The long-term secret of the base user: it must never be cached.
const BASE_SECRET: &str = "base-long-term-secret-0000000000000000";

/// The aws CLI's cache key for ADMIN with DEVICE (sha1 of its AssumeRole arguments, as
/// the aws CLI's own tests compute it).
const ADMIN_CACHE_KEY: &str = "e921df19558b9f6d91dc6299c462d8bc6f1671c8";

fn aws_cli() -> std::path::PathBuf {
    repo().join(".venv/bin/aws")
}

/// Profiles of a developer: a user with long-term keys, `admin` behind MFA, `plain`
/// without, and the environment that reaches them (no keys in it).
fn developer(moto: &Moto, config: &str) -> (Sandbox, Vec<(&'static str, String)>) {
    let sb = Sandbox::new();
    sb.write(
        "aws/credentials",
        format!("[base]\naws_access_key_id = AKIABASE\naws_secret_access_key = {BASE_SECRET}\n"),
    );
    sb.write("aws/config", config);
    let env = moto.files_env(&sb);
    (sb, env)
}

fn admin_config() -> String {
    format!(
        "[profile base]\nregion = eu-west-1\n\n\
         [profile admin]\nregion = eu-west-1\nrole_arn = {ADMIN}\nsource_profile = base\nmfa_serial = {DEVICE}\n\n\
         [profile plain]\nregion = eu-west-1\nrole_arn = {PLAIN}\nsource_profile = base\n"
    )
}

/// `program` (coffer, or the aws CLI) in the sandbox with exactly `env`, in a session of
/// its own: no terminal to ask a code on, so a code asked for is an error, not a hang.
fn detached(
    sb: &Sandbox,
    program: &std::path::Path,
    args: &[&str],
    env: &[(&str, String)],
) -> Output {
    let mut c = in_own_session(sb, &["-w"], program, args);
    c.stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn coffer() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_coffer"))
}

fn with(
    env: &[(&'static str, String)],
    more: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    let mut out = env.to_vec();
    out.extend(more.iter().map(|(k, v)| (*k, v.to_string())));
    out
}

fn counts(moto: &Moto) -> (usize, usize) {
    (
        moto.sts_calls("GetSessionToken").len(),
        moto.assume_role_calls().len(),
    )
}

fn kms_key(moto: &Moto, role: &str) -> String {
    Moto::key_in(&moto.as_role(role, "eu-west-1"))
}

#[test]
fn one_session_serves_every_process_and_the_aws_cli() {
    let moto = Moto::start();
    let (sb, env) = developer(&moto, &admin_config());
    let key = kms_key(&moto, ADMIN);
    let plain_key = kms_key(&moto, PLAIN);
    // STS calls coffer and the aws CLI made: (GetSessionToken, AssumeRole).
    let setup = counts(&moto);
    let made = || {
        let now = counts(&moto);
        (now.0 - setup.0, now.1 - setup.1)
    };
    let admin = with(
        &env,
        &[("AWS_PROFILE", "admin"), ("COFFER_MFA_TOKEN", "123456")],
    );
    sb.write("a.env", "A=1\n");
    sb.write("b.env", "B=2\n");
    sb.write("c.env", "C=3\n");

    // Two processes start together: one asks for the code and makes the sessions, the
    // other waits for them. One GetSessionToken, one AssumeRole between them.
    let started: Vec<_> = ["a.env", "b.env"]
        .iter()
        .map(|f| {
            let mut c = Command::new("setsid");
            c.arg("-w")
                .arg(coffer())
                .args(["encrypt", "--kms", &key, "-i", f])
                .env_clear()
                .env("PATH", path_with_coffer())
                .env("HOME", sb.home())
                .current_dir(sb.dir.path())
                .stdin(Stdio::null());
            for (k, v) in &admin {
                c.env(k, v);
            }
            c.started()
        })
        .collect();
    for s in started {
        let out = s.wait_with_output().unwrap();
        assert_success(&out, &["encrypt"]);
    }
    assert_eq!(made(), (1, 1), "{:#?}", moto.assume_role_calls());

    // The role's session is in the aws CLI's cache, under its key, mode 0600; nothing
    // long-term is.
    let cache = sb.home().join(".aws/cli/cache");
    let file = cache.join(format!("{ADMIN_CACHE_KEY}.json"));
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&cache), 0o700);
    for entry in std::fs::read_dir(&cache).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(!text.contains(BASE_SECRET), "{text}");
    }
    let cached: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(
        cached["Credentials"]["SessionToken"].is_string(),
        "{cached}"
    );

    // A later process, the code gone from its environment: no STS call, no code asked.
    let later = with(&env, &[("AWS_PROFILE", "admin")]);
    let out = detached(&sb, &coffer(), &["decrypt", "a.env"], &later);
    assert_success(&out, &["decrypt"]);
    assert_eq!(stdout(&out), "A=1\n");
    assert_eq!(made(), (1, 1));

    // The real aws CLI answers from coffer's session, without a code.
    let out = detached(
        &sb,
        &aws_cli(),
        &["sts", "get-caller-identity", "--profile", "admin"],
        &env,
    );
    assert_success(&out, &["aws sts get-caller-identity --profile admin"]);
    assert!(
        stdout(&out).contains("assumed-role/admin"),
        "{}",
        stdout(&out)
    );
    assert_eq!(made(), (1, 1));

    // And coffer answers from the aws CLI's: the aws CLI assumes `plain` and caches it;
    // coffer, then, assumes nothing.
    let out = detached(
        &sb,
        &aws_cli(),
        &["sts", "get-caller-identity", "--profile", "plain"],
        &env,
    );
    assert_success(&out, &["aws sts get-caller-identity --profile plain"]);
    assert_eq!(made(), (1, 2));
    let plain = with(&env, &[("AWS_PROFILE", "plain")]);
    let out = detached(
        &sb,
        &coffer(),
        &["encrypt", "--kms", &plain_key, "c.env"],
        &plain,
    );
    assert_success(&out, &["encrypt as plain"]);
    assert_eq!(made(), (1, 2));

    // COFFER_NO_CREDENTIAL_CACHE=1: the cache is neither read nor needed.
    let uncached = with(&plain, &[("COFFER_NO_CREDENTIAL_CACHE", "1")]);
    let out = detached(
        &sb,
        &coffer(),
        &["encrypt", "--kms", &plain_key, "c.env"],
        &uncached,
    );
    assert_success(&out, &["encrypt without the cache"]);
    assert_eq!(made(), (1, 3));
}

const CAROL: &str = "arn:aws:iam::123456789012:mfa/carol";
const DAVE: &str = "arn:aws:iam::123456789012:mfa/dave";

fn team_config() -> String {
    format!(
        "[profile base]\nregion = eu-west-1\nmfa_serial = {CAROL}\n\n\
         [profile dev]\nregion = eu-west-1\nrole_arn = arn:aws:iam::111111111111:role/dev\nsource_profile = base\nmfa_serial = {CAROL}\n\n\
         [profile prod]\nregion = eu-west-1\nrole_arn = arn:aws:iam::222222222222:role/prod\nsource_profile = base\nmfa_serial = {CAROL}\n\n\
         [profile base2]\nregion = eu-west-1\n\n\
         [profile other]\nregion = eu-west-1\nrole_arn = arn:aws:iam::555555555555:role/other\nsource_profile = base2\nmfa_serial = {DAVE}\n"
    )
}

const TARGETS: &str = "\
push:
  - name: dev
    files: dev.env
    to: secretsmanager
    prefix: app/
    aws_profile: dev
  - name: prod
    files: prod.env
    to: secretsmanager
    prefix: app/
    aws_profile: prod
  - name: ops
    files: ops.env
    to: secretsmanager
    prefix: ops/
    aws_profile: base
    role: arn:aws:iam::333333333333:role/deploy
    region: eu-west-1
  - name: other
    files: other.env
    to: secretsmanager
    prefix: other/
    aws_profile: other
";

#[test]
fn one_code_per_device_for_every_role_on_it_and_role_targets_on_an_mfa_user() {
    let moto = Moto::start();
    let (sb, env) = developer(&moto, &team_config());
    sb.write(
        "aws/credentials",
        format!("[base]\naws_access_key_id = AKIABASE\naws_secret_access_key = {BASE_SECRET}\n[base2]\naws_access_key_id = AKIABASE2\naws_secret_access_key = x\n"),
    );
    sb.write(".coffer.yaml", TARGETS);
    sb.encrypted("dev.env", "TOKEN=dev-token\n");
    sb.encrypted("prod.env", "TOKEN=prod-token\n");
    sb.encrypted("ops.env", "TOKEN=ops-token\n");
    sb.encrypted("other.env", "TOKEN=other-token\n");
    let coded = with(&env, &[("COFFER_MFA_TOKEN", "111111")]);

    // dev, prod (roles on carol's device) and ops (a role: target on the user with the
    // device): one code, one device session, each role assumed from it with no code.
    let out = detached(
        &sb,
        &coffer(),
        &[
            "push", "--target", "dev", "--target", "prod", "--target", "ops",
        ],
        &coded,
    );
    assert_success(&out, &["push dev prod ops"]);
    let sessions = moto.sts_calls("GetSessionToken");
    assert_eq!(sessions.len(), 1, "{sessions:#?}");
    assert!(
        sessions[0].starts_with("AKIABASE ")
            && sessions[0].contains("TokenCode=111111")
            && sessions[0].contains("carol"),
        "{}",
        sessions[0]
    );
    let device: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::fs::read_dir(sb.home().join(".aws/cli/cache"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| {
                    p.file_name()
                        .unwrap()
                        .to_str()
                        .unwrap()
                        .starts_with("coffer-mfa-")
                        && p.extension().is_some_and(|e| e == "json")
                })
                .expect("the device's session is cached"),
        )
        .unwrap(),
    )
    .unwrap();
    let session_key = device["Credentials"]["AccessKeyId"]
        .as_str()
        .unwrap()
        .to_string();
    let roles = moto.assume_role_calls();
    assert_eq!(roles.len(), 3, "{roles:#?}");
    for call in &roles {
        assert!(
            call.starts_with(&format!("{session_key} ")) && !call.contains("TokenCode"),
            "assumed from the device's session, without a code: {call}"
        );
    }
    for (account, name, value) in [
        ("111111111111", "app/TOKEN", "dev-token"),
        ("222222222222", "app/TOKEN", "prod-token"),
        ("333333333333", "ops/TOKEN", "ops-token"),
    ] {
        let role = match account {
            "111111111111" => "arn:aws:iam::111111111111:role/dev",
            "222222222222" => "arn:aws:iam::222222222222:role/prod",
            _ => "arn:aws:iam::333333333333:role/deploy",
        };
        let conf = moto.as_role(role, "eu-west-1");
        let got = Moto::rt()
            .block_on(
                aws_sdk_secretsmanager::Client::new(&conf)
                    .get_secret_value()
                    .secret_id(name)
                    .send(),
            )
            .unwrap();
        assert_eq!(got.secret_string(), Some(value), "{account}");
    }

    // Another device in the same process: COFFER_MFA_TOKEN answered carol's, and is not
    // sent again (AWS refuses a code used twice); with no terminal, dave's is an error.
    let out = detached(
        &sb,
        &coffer(),
        &["push", "--target", "dev", "--target", "other"],
        &with(&coded, &[("COFFER_NO_CREDENTIAL_CACHE", "1")]),
    );
    assert_error(
        &out,
        1,
        &format!("push other: profile other needs an MFA code for {DAVE} and there is no terminal; set COFFER_MFA_TOKEN (it answers one device)"),
    );
    assert_eq!(moto.sts_calls("GetSessionToken").len(), 2);
}

#[test]
fn unknown_profiles_are_errors_before_any_call_and_the_flag_wins() {
    let moto = Moto::start();
    let (sb, env) = developer(&moto, &admin_config());
    let keys = with(
        &env,
        &[
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "eu-west-1"),
        ],
    );
    let key = moto.create_key("eu-west-1");
    sb.write("f.env", "A=1\n");
    let files = format!(
        "(not in {}, {})",
        sb.path("aws/config").display(),
        sb.path("aws/credentials").display()
    );
    let before = moto.requests().len();

    // The flag, even with keys in the environment.
    let out = detached(
        &sb,
        &coffer(),
        &["--aws-profile", "nope", "encrypt", "--kms", &key, "f.env"],
        &keys,
    );
    assert_error(
        &out,
        1,
        &format!("coffer: unknown AWS profile \"nope\" {files}"),
    );
    // AWS_PROFILE.
    let out = detached(
        &sb,
        &coffer(),
        &["encrypt", "--kms", &key, "f.env"],
        &with(&keys, &[("AWS_PROFILE", "nope")]),
    );
    assert_error(&out, 1, &format!("unknown AWS profile \"nope\" {files}"));
    // A push target's, found before the first target makes a call.
    sb.write(
        ".coffer.yaml",
        "push:\n  - name: good\n    files: f.env\n    to: ssm\n    prefix: /app\n  - name: bad\n    files: f.env\n    to: ssm\n    prefix: /app\n    aws_profile: gone\n",
    );
    let out = detached(&sb, &coffer(), &["push", "--dry-run"], &keys);
    assert_error(
        &out,
        1,
        &format!("coffer: push bad: unknown AWS profile \"gone\" {files}"),
    );
    assert_eq!(moto.requests().len(), before, "no call was made");

    // A key's own profile, missing on this machine: the key names it and the files.
    std::fs::remove_file(sb.path(".coffer.yaml")).unwrap();
    sb.write(
        ".sops.yaml",
        format!("creation_rules:\n  - kms: {key}\n    aws_profile: laptop\n"),
    );
    sb.write(
        "aws/config",
        format!("{}\n[profile laptop]\nregion = eu-west-1\naws_access_key_id = AKIALAPTOP\naws_secret_access_key = laptop-secret\n", admin_config()),
    );
    let out = detached(&sb, &coffer(), &["encrypt", "-i", "f.env"], &keys);
    assert_success(&out, &["encrypt with the key's profile"]);
    assert!(sb
        .read_str("f.env")
        .contains("sops_kms__list_0__map_aws_profile=laptop"));
    sb.write("aws/config", admin_config());
    let out = detached(&sb, &coffer(), &["decrypt", "f.env"], &keys);
    assert!(
        stderr(&out).contains(&format!("unknown AWS profile \"laptop\" {files}")),
        "{}",
        stderr(&out)
    );
    // --aws-profile wins over it, and says so.
    sb.write(
        "aws/credentials",
        format!("[base]\naws_access_key_id = AKIABASE\naws_secret_access_key = {BASE_SECRET}\n[ci]\naws_access_key_id = AKIACIPROFILE\naws_secret_access_key = ci-secret\n"),
    );
    let out = detached(
        &sb,
        &coffer(),
        &["--aws-profile", "ci", "decrypt", "f.env"],
        &keys,
    );
    assert_success(&out, &["decrypt --aws-profile ci"]);
    assert_eq!(stdout(&out), "A=1\n");
    assert_eq!(
        stderr(&out),
        "coffer: warning: --aws-profile ci is used where profile laptop is named\n"
    );
    // The named profile's keys, not the environment's, signed the call.
    assert_eq!(
        moto.signers("TrentService.Decrypt")
            .last()
            .map(String::as_str),
        Some("AKIACIPROFILE")
    );
}

#[test]
fn aws_errors_name_the_operation_region_account_profile_and_target() {
    let moto = Moto::start();
    let sb = Sandbox::new();
    let (id, secret) = moto.user(
        "deployer",
        &["secretsmanager:ListSecrets", "sts:AssumeRole"],
    );
    moto.enforce_iam();
    sb.write(
        "aws/credentials",
        format!("[deploy-prod]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n"),
    );
    sb.write(
        "aws/config",
        "[profile deploy-prod]\nregion = eu-west-1\n\n[profile deploy-stage]\nregion = eu-west-1\nrole_arn = arn:aws:iam::333333333333:role/stage\nsource_profile = deploy-prod\n",
    );
    sb.write(
        ".coffer.yaml",
        "push:\n  - name: prod\n    files: prod.env\n    to: secretsmanager\n    prefix: web/\n    aws_profile: deploy-prod\n  - name: stage\n    files: prod.env\n    to: secretsmanager\n    prefix: web/\n    aws_profile: deploy-stage\n",
    );
    sb.encrypted("prod.env", "A=1\n");
    let env = moto.files_env(&sb);
    let out = detached(
        &sb,
        &coffer(),
        &["push", "--check", "--target", "prod"],
        &env,
    );
    assert_error(
        &out,
        1,
        "coffer: push prod: secretsmanager ListSecrets web/ in eu-west-1 (account 123456789012, profile deploy-prod): ",
    );
    let err = stderr(&out);
    assert!(
        err.contains("AccessDenied") || err.contains("HTTP 403 (access denied)"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    // A role of a profile's chain that cannot be assumed: the call, the role, where.
    let out = detached(
        &sb,
        &coffer(),
        &["push", "--check", "--target", "stage"],
        &env,
    );
    assert_error(
        &out,
        1,
        "coffer: push stage: sts AssumeRole arn:aws:iam::333333333333:role/stage in eu-west-1 (account 333333333333, profile deploy-stage): ",
    );
}

/// A cached session that has expired, or a cache file that does not read, is made anew
/// (and written over); the device's session, still good, spares the code.
#[test]
fn expired_or_broken_cached_sessions_are_made_anew() {
    let moto = Moto::start();
    let (sb, env) = developer(&moto, &admin_config());
    let key = kms_key(&moto, ADMIN);
    let setup = counts(&moto);
    let made = || {
        let now = counts(&moto);
        (now.0 - setup.0, now.1 - setup.1)
    };
    let coded = with(
        &env,
        &[("AWS_PROFILE", "admin"), ("COFFER_MFA_TOKEN", "123456")],
    );
    let uncoded = with(&env, &[("AWS_PROFILE", "admin")]);
    sb.write("a.env", "A=1\n");
    let out = detached(
        &sb,
        &coffer(),
        &["encrypt", "--kms", &key, "-i", "a.env"],
        &coded,
    );
    assert_success(&out, &["encrypt"]);
    assert_eq!(made(), (1, 1));
    let role_file = sb
        .home()
        .join(format!(".aws/cli/cache/{ADMIN_CACHE_KEY}.json"));

    // The role's session expired: assumed again from the device's session, no code.
    let mut cached: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&role_file).unwrap()).unwrap();
    cached["Credentials"]["Expiration"] = "2020-01-01T00:00:00UTC".into();
    std::fs::write(&role_file, cached.to_string()).unwrap();
    let out = detached(&sb, &coffer(), &["decrypt", "a.env"], &uncoded);
    assert_success(&out, &["decrypt with the role's session expired"]);
    assert_eq!(made(), (1, 2));
    let renewed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&role_file).unwrap()).unwrap();
    assert_ne!(
        renewed["Credentials"]["Expiration"],
        "2020-01-01T00:00:00UTC"
    );

    // Every cached session broken: a new code makes them anew.
    for entry in std::fs::read_dir(role_file.parent().unwrap()).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "json") {
            std::fs::write(&p, "{not json").unwrap();
        }
    }
    let out = detached(&sb, &coffer(), &["decrypt", "a.env"], &uncoded);
    assert_error(&out, 3, "no identity could open the data key");
    assert!(
        stderr(&out).contains(&format!(
            "profile admin needs an MFA code for {DEVICE} and there is no terminal"
        )),
        "{}",
        stderr(&out)
    );
    let out = detached(&sb, &coffer(), &["decrypt", "a.env"], &coded);
    assert_success(&out, &["decrypt with a new code"]);
    assert_eq!(made(), (2, 3));
    assert_eq!(mode(&role_file), 0o600);
}
