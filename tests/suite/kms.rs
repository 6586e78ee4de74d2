//! KMS master keys against a real AWS API endpoint served locally by moto.

use std::process::Stdio;
use std::time::Instant;

use super::common::*;
use super::moto::{ok, run, Moto};

impl Moto {
    fn client(&self, region: &str) -> aws_sdk_kms::Client {
        let creds = aws_sdk_kms::config::Credentials::new("testing", "testing", None, None, "test");
        let conf = aws_sdk_kms::Config::builder()
            .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
            .region(aws_sdk_kms::config::Region::new(region.to_string()))
            .endpoint_url(&self.endpoint)
            .credentials_provider(creds)
            .build();
        aws_sdk_kms::Client::from_conf(conf)
    }

    /// A new symmetric key's ARN.
    pub(super) fn create_key(&self, region: &str) -> String {
        let conf = self
            .sdk_config()
            .into_builder()
            .region(aws_config::Region::new(region.to_string()))
            .build();
        Self::key_in(&conf)
    }

    fn alias(&self, region: &str, key_arn: &str, name: &str) -> String {
        let c = self.client(region);
        Self::rt().block_on(async {
            c.create_alias()
                .alias_name(format!("alias/{name}"))
                .target_key_id(key_arn)
                .send()
                .await
                .unwrap();
        });
        let account = key_arn.split(':').nth(4).unwrap();
        format!("arn:aws:kms:{region}:{account}:alias/{name}")
    }
}

#[test]
fn a_key_arn_and_an_alias_wrap_and_open_the_data_key() {
    let moto = Moto::start();
    let sb = Sandbox::without_key();
    let key = moto.create_key("eu-west-1");
    let alias = moto.alias("eu-west-1", &key, "secrets");
    for (name, arn) in [("by-arn.env", &key), ("by-alias.env", &alias)] {
        sb.write(name, "DB_PASSWORD=hunter2\n");
        ok(&sb, &moto, &["encrypt", "--kms", arn, "-i", name]);
        let enc = sb.read_str(name);
        assert!(
            enc.contains(&format!("sops_kms__list_0__map_arn={arn}")),
            "{enc}"
        );
        assert!(enc.contains("sops_kms__list_0__map_enc=") && !enc.contains("hunter2"));
        assert_eq!(
            stdout(&ok(&sb, &moto, &["decrypt", name])),
            "DB_PASSWORD=hunter2\n"
        );
    }
}

#[test]
fn two_regions_either_key_opens_the_file() {
    let moto = Moto::start();
    let sb = Sandbox::without_key();
    let (a, b) = (moto.create_key("us-east-1"), moto.create_key("eu-west-1"));
    sb.write("s.yaml", "token: abc\n");
    ok(
        &sb,
        &moto,
        &["encrypt", "--kms", &format!("{a},{b}"), "-i", "s.yaml"],
    );
    assert_eq!(
        sb.read_str("s.yaml").matches("- arn: arn:aws:kms:").count(),
        2
    );
    // Break the first key's wrapped copy: the second key still opens the file.
    // (moto does not enforce disabled keys on Decrypt, so a bad ciphertext stands in.)
    let enc = sb.read_str("s.yaml");
    let broken = |text: &str, n: usize| -> String {
        let mut seen = 0;
        text.lines()
            .map(|l| {
                if l.trim_start().starts_with("enc: ") && !l.contains('|') {
                    seen += 1;
                    if seen <= n {
                        return format!(
                            "{}enc: AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=",
                            &l[..l.find("enc:").unwrap()]
                        );
                    }
                }
                l.to_string()
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    };
    sb.write("s.yaml", broken(&enc, 1));
    assert_eq!(
        stdout(&ok(&sb, &moto, &["decrypt", "s.yaml"])),
        "token: abc\n"
    );
    sb.write("s.yaml", broken(&enc, 2));
    let out = run(&sb, &moto, &["decrypt", "s.yaml"]);
    assert_error(&out, 3, "s.yaml: no identity could open the data key");
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "hint: kms:{a}: Decrypt in us-east-1 (account 123456789012): InvalidCiphertextException"
        )) && err.contains(&format!(
            "hint: kms:{b}: Decrypt in eu-west-1 (account 123456789012): InvalidCiphertextException"
        )),
        "{err}"
    );
}

#[test]
fn the_encryption_context_is_bound_to_the_key() {
    let moto = Moto::start();
    let sb = Sandbox::without_key();
    let key = moto.create_key("eu-west-1");
    sb.write("p.yaml", "password: s3cret\n");
    ok(
        &sb,
        &moto,
        &[
            "encrypt",
            "--kms",
            &key,
            "--encryption-context",
            "app=web,env=prod",
            "-i",
            "p.yaml",
        ],
    );
    let enc = sb.read_str("p.yaml");
    assert!(
        enc.contains("      context:\n        app: web\n        env: prod\n"),
        "{enc}"
    );
    assert_eq!(
        stdout(&ok(&sb, &moto, &["decrypt", "p.yaml"])),
        "password: s3cret\n"
    );
    sb.write("p.yaml", enc.replace("env: prod", "env: staging"));
    let out = run(&sb, &moto, &["decrypt", "p.yaml"]);
    assert_error(&out, 3, "no identity could open");
    assert!(
        stderr(&out).contains("InvalidCiphertextException"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn kms_and_age_on_one_file_either_opens_it() {
    let moto = Moto::start();
    let sb = Sandbox::new();
    let key = moto.create_key("eu-west-1");
    sb.write("both.json", "{\"k\": \"v\"}\n");
    ok(
        &sb,
        &moto,
        &[
            "encrypt",
            "--kms",
            &key,
            "--age",
            &sb.recipient,
            "-i",
            "both.json",
        ],
    );
    // age alone, with AWS unreachable.
    let out = sb.run(&["decrypt", "both.json"]);
    assert_success(&out, &["decrypt with age"]);
    // KMS alone, with no age identity.
    let nokey = Sandbox::without_key();
    nokey.copy(&sb.path("both.json"), "both.json");
    assert_eq!(
        stdout(&ok(&nokey, &moto, &["decrypt", "both.json"])),
        "{\"k\": \"v\"}\n"
    );
}

#[test]
fn creation_rules_and_updatekeys_add_and_remove_kms_keys() {
    let moto = Moto::start();
    let sb = Sandbox::new();
    let (a, b) = (moto.create_key("eu-west-1"), moto.create_key("eu-west-1"));
    sb.write(
        ".coffer.yaml",
        format!("creation_rules:\n  - kms: {a}\n    age: {}\n", sb.recipient),
    );
    sb.write("s.env", "A=1\nB=2\n");
    ok(&sb, &moto, &["encrypt", "-i", "s.env"]);
    let before = sb.read_str("s.env");
    assert!(before.contains(&a));
    sb.write(
        ".coffer.yaml",
        format!("creation_rules:\n  - kms: {b}\n    age: {}\n", sb.recipient),
    );
    let (encrypts, decrypts) = (
        moto.calls("TrentService.Encrypt"),
        moto.calls("TrentService.Decrypt"),
    );
    let out = ok(&sb, &moto, &["updatekeys", "-y", "s.env"]);
    assert_eq!(
        stdout(&out),
        format!(
            "s.env\n  + kms:{b}\n  - kms:{a}\n  (data key rotated: a key was removed)\n\
             Plan: 1 file(s) to change (1 with a new data key), 0 unchanged, 0 skipped.\n"
        )
    );
    // The file was opened with the age key (no KMS Decrypt), and its new data key wrapped
    // once for the one KMS key it has now.
    assert_eq!(moto.calls("TrentService.Encrypt") - encrypts, 1);
    assert_eq!(moto.calls("TrentService.Decrypt") - decrypts, 0);
    let after = sb.read_str("s.env");
    let values = |s: &str| {
        s.lines()
            .filter(|l| !l.starts_with("sops_"))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    // A removed key means a new data key: every value is encrypted anew.
    assert!(
        values(&before)
            .iter()
            .zip(values(&after).iter())
            .all(|(x, y)| x != y),
        "values kept their old encryption"
    );
    assert!(after.contains(&b) && !after.contains(&a));
    // The new KMS key alone opens it.
    let nokey = Sandbox::without_key();
    nokey.copy(&sb.path("s.env"), "s.env");
    assert_eq!(
        stdout(&ok(&nokey, &moto, &["decrypt", "s.env"])),
        "A=1\nB=2\n"
    );
}

#[test]
fn errors_name_the_key_and_the_reason() {
    let moto = Moto::start();
    let sb = Sandbox::without_key();
    let key = moto.create_key("eu-west-1");
    // A key that does not exist.
    let missing = key
        .rsplit_once('/')
        .map(|(a, _)| format!("{a}/00000000-0000-0000-0000-000000000000"))
        .unwrap();
    sb.write("m.env", "A=1\n");
    let out = run(&sb, &moto, &["encrypt", "--kms", &missing, "m.env"]);
    assert_error(
        &out,
        1,
        &format!("kms:{missing}: Encrypt in eu-west-1 (account 123456789012): NotFoundException"),
    );
    assert_eq!(sb.read_str("m.env"), "A=1\n");
    // No credentials anywhere: no env keys, no profile, no instance metadata.
    ok(&sb, &moto, &["encrypt", "--kms", &key, "-i", "m.env"]);
    let out = sb.run_with(
        &["decrypt", "m.env"],
        &[
            ("AWS_ENDPOINT_URL", &moto.endpoint),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
    );
    assert_error(&out, 3, "no identity could open");
    assert!(
        stderr(&out).contains(&format!(
            "hint: kms:{key}: Decrypt in eu-west-1 (account 123456789012): no AWS credentials found (tried the default credential chain)"
        )),
        "{}",
        stderr(&out)
    );
    // A malformed ARN is refused before any call.
    assert_error(
        &sb.run(&["encrypt", "--kms", "alias/secrets", "m.env"]),
        1,
        "is not a KMS key or alias ARN",
    );
}

impl Moto {
    /// Credentials for `role_arn`, assumed through moto's STS.
    fn assume(&self, role_arn: &str) -> aws_sdk_kms::config::Credentials {
        let conf = aws_sdk_sts::Config::builder()
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .region(aws_sdk_sts::config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_sts::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .build();
        let sts = aws_sdk_sts::Client::from_conf(conf);
        let c = Self::rt()
            .block_on(async {
                sts.assume_role()
                    .role_arn(role_arn)
                    .role_session_name("test")
                    .send()
                    .await
                    .unwrap()
            })
            .credentials
            .unwrap();
        aws_sdk_kms::config::Credentials::new(
            c.access_key_id,
            c.secret_access_key,
            Some(c.session_token),
            None,
            "assumed",
        )
    }

    /// A key created with `creds` (so in their account).
    fn create_key_as(&self, region: &str, creds: aws_sdk_kms::config::Credentials) -> String {
        let conf = aws_sdk_kms::Config::builder()
            .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
            .region(aws_sdk_kms::config::Region::new(region.to_string()))
            .endpoint_url(&self.endpoint)
            .credentials_provider(creds)
            .build();
        let c = aws_sdk_kms::Client::from_conf(conf);
        Self::rt().block_on(async {
            c.create_key()
                .send()
                .await
                .unwrap()
                .key_metadata
                .unwrap()
                .arn
                .unwrap()
        })
    }
}

#[test]
fn a_role_is_assumed_per_key() {
    let moto = Moto::start();
    let sb = Sandbox::without_key();
    // moto gives assumed-role credentials the role's account: a key made there is
    // invisible to the base credentials.
    let role = "arn:aws:iam::111111111111:role/deploy";
    let key = moto.create_key_as("eu-west-1", moto.assume(role));
    assert!(key.contains(":111111111111:key/"), "{key}");
    sb.write("r.env", "A=1\n");
    let out = run(&sb, &moto, &["encrypt", "--kms", &key, "r.env"]);
    assert_error(&out, 1, "NotFoundException");
    ok(
        &sb,
        &moto,
        &["encrypt", "--kms", &format!("{key}+{role}"), "-i", "r.env"],
    );
    let enc = sb.read_str("r.env");
    assert!(
        enc.contains(&format!("sops_kms__list_0__map_role={role}")),
        "{enc}"
    );
    assert_eq!(stdout(&ok(&sb, &moto, &["decrypt", "r.env"])), "A=1\n");
}

#[test]
fn a_named_profile_supplies_the_credentials() {
    let moto = Moto::start();
    let sb = Sandbox::without_key();
    let key = moto.create_key("eu-west-1");
    sb.write(
        "aws/credentials",
        "[sops]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
    );
    sb.write("aws/config", "[profile sops]\nregion = eu-west-1\n");
    let creds = sb.path("aws/credentials");
    let config = sb.path("aws/config");
    let env = [
        ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_SHARED_CREDENTIALS_FILE", creds.to_str().unwrap()),
        ("AWS_CONFIG_FILE", config.to_str().unwrap()),
    ];
    sb.write("p.env", "A=1\n");
    // Without the profile there are no credentials at all.
    let out = sb.run_with(&["encrypt", "--kms", &key, "p.env"], &env);
    assert_error(
        &out,
        1,
        "no AWS credentials found (tried the default credential chain)",
    );
    let out = sb.run_with(
        &[
            "--aws-profile",
            "sops",
            "encrypt",
            "--kms",
            &key,
            "-i",
            "p.env",
        ],
        &env,
    );
    assert_success(&out, &["encrypt with --aws-profile"]);
    // AWS_PROFILE works as well, and COFFER_KMS_ARN names the key.
    let mut with_profile = env.to_vec();
    with_profile.push(("AWS_PROFILE", "sops"));
    assert_eq!(
        stdout(&sb.run_with(&["decrypt", "p.env"], &with_profile)),
        "A=1\n"
    );
    with_profile.push(("COFFER_KMS_ARN", key.as_str()));
    sb.write("q.env", "B=2\n");
    assert_success(
        &sb.run_with(&["encrypt", "-i", "q.env"], &with_profile),
        &["COFFER_KMS_ARN"],
    );
    assert!(sb.read_str("q.env").contains(&key));
}

#[test]
fn a_checkout_of_files_sharing_a_data_key_calls_kms_once() {
    let moto = Moto::start();
    let sb = Sandbox::without_key();
    let key = moto.create_key("eu-west-1");
    sb.write("repo/one.yaml", "token: abc\n");
    sb.git("repo", &["init", "-q", "-b", "main"]);
    let env = moto.env();
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = sb
        .cmd()
        .current_dir(sb.path("repo"))
        .envs(pairs.iter().copied())
        .args(["encrypt", "--kms", &key, "-i", "one.yaml"])
        .output()
        .unwrap();
    assert_success(&out, &["encrypt"]);
    assert_success(&sb.coffer_in("repo", &["git", "setup"]), &["setup"]);
    sb.write(
        "repo/.gitattributes",
        "secrets/** filter=coffer diff=coffer merge=coffer\n",
    );
    // Fifty files with one data key (an encrypted file passes clean unchanged).
    for i in 0..50 {
        sb.copy(
            &sb.path("repo/one.yaml"),
            &format!("repo/secrets/f{i:02}.yaml"),
        );
    }
    let git = |args: &[&str]| {
        let out = sb.git_env("repo", args, &pairs);
        assert_success(&out, args);
    };
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "fifty"]);
    std::fs::remove_dir_all(sb.path("repo/secrets")).unwrap();
    let before = moto.calls("TrentService.Decrypt");
    let t = Instant::now();
    git(&["checkout", "-q", "--", "secrets"]);
    let took = t.elapsed();
    assert_eq!(sb.read_str("repo/secrets/f49.yaml"), "token: abc\n");
    assert_eq!(
        moto.calls("TrentService.Decrypt") - before,
        1,
        "one Decrypt for fifty files sharing a data key"
    );
    eprintln!("checkout of 50 files sharing a KMS data key: 1 Decrypt call, {took:?}");
}

#[test]
fn an_mfa_profile_takes_its_code_from_coffer_mfa_token() {
    let moto = Moto::start();
    let sb = Sandbox::without_key();
    let role = "arn:aws:iam::222222222222:role/admin";
    let key = moto.create_key_as("eu-west-1", moto.assume(role));
    sb.write(
        "aws/credentials",
        "[base]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
    );
    sb.write(
        "aws/config",
        format!("[profile base]\nregion = eu-west-1\n\n[profile admin]\nrole_arn = {role}\nsource_profile = base\nmfa_serial = arn:aws:iam::123456789012:mfa/alice\n"),
    );
    let (creds, config) = (sb.path("aws/credentials"), sb.path("aws/config"));
    let base = vec![
        ("AWS_ENDPOINT_URL", moto.endpoint.clone()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ("AWS_SHARED_CREDENTIALS_FILE", creds.display().to_string()),
        ("AWS_CONFIG_FILE", config.display().to_string()),
        ("AWS_PROFILE", "admin".to_string()),
    ];
    let as_pairs = |v: &Vec<(&'static str, String)>| {
        v.iter().map(|(k, v)| (*k, v.clone())).collect::<Vec<_>>()
    };
    sb.write("m.env", "A=1\n");
    // No terminal and no COFFER_MFA_TOKEN: a clear error, nothing written.
    let env = as_pairs(&base);
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut cmd = sb.cmd();
    cmd.envs(pairs.iter().copied())
        .args(["encrypt", "--kms", &key, "-i", "m.env"]);
    // setsid-like: no controlling terminal for the child.
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("needs an MFA code") || stderr(&out).contains("MFA"),
        "{}",
        stderr(&out)
    );
    assert_eq!(sb.read_str("m.env"), "A=1\n");
    // With the code, the role is assumed with MFA and the key in its account is used.
    let mut with_token = as_pairs(&base);
    with_token.push(("COFFER_MFA_TOKEN", "123456".to_string()));
    let pairs: Vec<(&str, &str)> = with_token.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_success(
        &sb.run_with(&["encrypt", "--kms", &key, "-i", "m.env"], &pairs),
        &["encrypt with MFA"],
    );
    assert_eq!(stdout(&sb.run_with(&["decrypt", "m.env"], &pairs)), "A=1\n");
}

#[test]
fn an_unreachable_endpoint_is_named() {
    let sb = Sandbox::without_key();
    sb.write("u.env", "A=1\n");
    let key = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555";
    let out = sb.run_with(
        &["encrypt", "--kms", key, "u.env"],
        &[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
            ("AWS_ACCESS_KEY_ID", "x"),
            ("AWS_SECRET_ACCESS_KEY", "x"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
    );
    assert_error(
        &out,
        1,
        &format!("kms:{key}: Encrypt in eu-west-1 (account 123456789012): cannot reach KMS"),
    );
}

#[test]
fn under_the_name_sops_kms_keys_wrap_and_open_files_both_ways() {
    let moto = Moto::start();
    let sb = Sandbox::without_key();
    let key = moto.create_key("eu-west-1");
    let env = moto.env();
    let with_moto = |mut c: std::process::Command, args: &[&str]| {
        for (k, v) in &env {
            c.env(k, v);
        }
        c.env("SOPS_DISABLE_VERSION_CHECK", "1")
            .args(args)
            .output()
            .unwrap()
    };
    let real = || {
        let mut c = std::process::Command::new(sops_bin());
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", sb.home())
            .current_dir(sb.dir.path());
        c
    };
    sb.write("app.yaml", "db:\n    password: hunter2\n");
    // SOPS_KMS_ARN names the key, as deploy scripts set it.
    let mut c = sb.as_sops();
    c.env("SOPS_KMS_ARN", &key);
    let out = with_moto(c, &["-e", "app.yaml"]);
    assert_success(&out, &["sops -e with SOPS_KMS_ARN"]);
    sb.write("ours.yaml", &out.stdout);
    assert!(sb.read_str("ours.yaml").contains(&key));
    let out = with_moto(real(), &["-d", "ours.yaml"]);
    assert_success(&out, &["real sops -d"]);
    assert_eq!(stdout(&out), "db:\n    password: hunter2\n");
    let out = with_moto(real(), &["-e", "-k", &key, "app.yaml"]);
    assert_success(&out, &["real sops -e -k"]);
    sb.write("theirs.yaml", &out.stdout);
    let out = with_moto(
        sb.as_sops(),
        &["-d", "--extract", "[\"db\"][\"password\"]", "theirs.yaml"],
    );
    assert_success(&out, &["sops -d --extract"]);
    assert_eq!(stdout(&out), "hunter2");
    // A key that is gone: 128, as sops says it.
    let out = sb
        .as_sops()
        .args(["-d", "theirs.yaml"])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "y")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(128), "{}", stderr(&out));
}

/// coffer cannot take someone's IAM access to a KMS key away: removing a person from
/// files a KMS key also opens says so, in the plan.
#[test]
fn team_remove_names_the_kms_keys_it_cannot_revoke() {
    let moto = Moto::start();
    let sb = Sandbox::new();
    let bob = Sandbox::new();
    let key = moto.create_key("eu-west-1");
    sb.write(
        ".coffer.yaml",
        format!(
            "keys:\n  - &me {}\n  - &bob {}\n  - &prod {key}\ncreation_rules:\n  - path_regex: ^prod/\n    kms: *prod\n    age: [*me, *bob]\n  - age: [*me, *bob]\n",
            sb.recipient, bob.recipient
        ),
    );
    sb.write("prod/a.env", "A=1\n");
    sb.write("dev/b.env", "B=1\n");
    ok(&sb, &moto, &["encrypt", "-i", "prod/a.env"]);
    ok(&sb, &moto, &["encrypt", "-i", "dev/b.env"]);
    let out = ok(&sb, &moto, &["team", "remove", "bob", "--dry-run"]);
    let text = stdout(&out);
    assert!(
        text.ends_with(
            "1 of these file(s) are also opened by KMS keys, which coffer cannot revoke: remove bob's IAM access to those keys too\n"
        ),
        "{text}"
    );
    let out = ok(&sb, &moto, &["access", "prod/a.env"]);
    assert!(
        stdout(&out).contains(&format!("  kms:{key} (prod)\n")),
        "{}",
        stdout(&out)
    );
}
