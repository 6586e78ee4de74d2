//! One AWS session for every service: MFA profiles reach KMS, Secrets Manager, SSM and S3
//! with one code per session; push targets of `.coffer.yaml` in two accounts; `--check`;
//! settings kept in step. All against the local endpoint.

use super::common::*;
use super::moto::{run_as, Moto};

const MFA_SERIAL: &str = "arn:aws:iam::123456789012:mfa/alice";
const ADMIN: &str = "arn:aws:iam::222222222222:role/admin";

/// A sandbox whose AWS profile `admin` assumes a role behind MFA, and the environment
/// that selects it (no credentials in the environment itself).
fn mfa_sandbox(moto: &Moto) -> (Sandbox, Vec<(&'static str, String)>) {
    let sb = Sandbox::new();
    sb.write(
        "aws/credentials",
        "[base]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
    );
    sb.write(
        "aws/config",
        format!(
            "[profile base]\nregion = eu-west-1\n\n[profile admin]\nregion = eu-west-1\nrole_arn = {ADMIN}\nsource_profile = base\nmfa_serial = {MFA_SERIAL}\n"
        ),
    );
    let mut env = moto.files_env(&sb);
    env.push(("AWS_PROFILE", "admin".to_string()));
    env.push(("COFFER_MFA_TOKEN", "123456".to_string()));
    (sb, env)
}

/// Run coffer with exactly `env` (the endpoint's default credentials left out), and
/// return the STS calls the process made: `GetSessionToken`s and `AssumeRole`s.
fn run_counting(
    sb: &Sandbox,
    moto: &Moto,
    env: &[(&'static str, String)],
    args: &[&str],
) -> (Vec<String>, Vec<String>) {
    let before = (
        moto.sts_calls("GetSessionToken").len(),
        moto.assume_role_calls().len(),
    );
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = sb.run_with(args, &pairs);
    assert_success(&out, args);
    (
        moto.sts_calls("GetSessionToken").split_off(before.0),
        moto.assume_role_calls().split_off(before.1),
    )
}

#[test]
fn an_mfa_profile_reaches_every_service_with_one_code_per_session() {
    let moto = Moto::start();
    let (sb, env) = mfa_sandbox(&moto);
    // What lives in the role's account: a KMS key, a parameter and an S3 object.
    let admin = moto.as_role(ADMIN, "eu-west-1");
    let rt = Moto::rt();
    let key = rt
        .block_on(aws_sdk_kms::Client::new(&admin).create_key().send())
        .unwrap()
        .key_metadata
        .unwrap()
        .arn
        .unwrap();
    rt.block_on(
        aws_sdk_ssm::Client::new(&admin)
            .put_parameter()
            .name("/app/flag")
            .value("on")
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send(),
    )
    .unwrap();
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&admin)
            .force_path_style(true)
            .build(),
    );
    rt.block_on(async {
        s3.create_bucket()
            .bucket("legacy")
            .create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        s3.put_object()
            .bucket("legacy")
            .key("smtp")
            .body(b"mail-pw".to_vec().into())
            .send()
            .await
            .unwrap();
    });

    // The first process asks for the code once: a session of the device (GetSessionToken
    // with its serial and the code), the role assumed from it without a code.
    sb.write("app.env", "API_KEY=key-one\nDB_PASSWORD=hunter2\n");
    let (sessions, roles) = run_counting(
        &sb,
        &moto,
        &env,
        &["encrypt", "--kms", &key, "-i", "app.env"],
    );
    assert_eq!(sessions.len(), 1, "{sessions:#?}");
    assert!(
        sessions[0].contains("SerialNumber=arn%3Aaws%3Aiam%3A%3A123456789012%3Amfa%2Falice")
            && sessions[0].contains("TokenCode=123456"),
        "{}",
        sessions[0]
    );
    assert_eq!(roles.len(), 1, "{roles:#?}");
    assert!(
        roles[0].contains("RoleArn=arn%3Aaws%3Aiam%3A%3A222222222222%3Arole%2Fadmin")
            && !roles[0].contains("TokenCode"),
        "{}",
        roles[0]
    );
    // Every later process finds the role's session in the aws CLI's cache: no STS call,
    // and no code to give.
    let env: Vec<(&'static str, String)> = env
        .into_iter()
        .filter(|(k, _)| *k != "COFFER_MFA_TOKEN")
        .collect();
    let with_mfa = |calls: (Vec<String>, Vec<String>), what: &str| {
        assert_eq!(calls, (vec![], vec![]), "{what}");
    };
    with_mfa(
        run_counting(
            &sb,
            &moto,
            &env,
            &[
                "push",
                "app.env",
                "--to",
                "secretsmanager",
                "--prefix",
                "app/",
                "--each",
            ],
        ),
        "push (KMS Decrypt and Secrets Manager)",
    );
    let arn = aws_sdk_secretsmanager::Client::new(&admin);
    let pushed = rt
        .block_on(arn.describe_secret().secret_id("app/API_KEY").send())
        .unwrap();
    assert!(
        pushed.arn().unwrap().contains(":222222222222:"),
        "{pushed:?}"
    );

    sb.write(
        "app.tmpl",
        "key={{ secret awsSecret://app/API_KEY }}\nflag={{ secret ssm:///app/flag }}\nsmtp={{ secret s3://legacy/smtp }}\n",
    );
    with_mfa(
        run_counting(&sb, &moto, &env, &["render", "app.tmpl", "-o", "app.conf"]),
        "render (Secrets Manager, SSM, S3)",
    );
    assert_eq!(
        sb.read_str("app.conf"),
        "key=key-one\nflag=on\nsmtp=mail-pw\n"
    );

    with_mfa(
        run_counting(
            &sb,
            &moto,
            &env,
            &[
                "migrate",
                "s3",
                "--bucket",
                "legacy",
                "--to",
                "secretsmanager",
            ],
        ),
        "migrate s3 (S3 and Secrets Manager)",
    );
    let migrated = rt
        .block_on(arn.get_secret_value().secret_id("legacy/smtp").send())
        .unwrap();
    assert_eq!(migrated.secret_string(), Some("mail-pw"));

    with_mfa(
        run_counting(&sb, &moto, &env, &["decrypt", "app.env"]),
        "decrypt (KMS Decrypt)",
    );
}

const TARGETS: &str = "\
push:
  - name: staging
    files: deploy/staging/*.env
    to: secretsmanager
    prefix: web/
    role: arn:aws:iam::111111111111:role/deploy
    region: eu-west-1
  - name: prod
    files:
      - deploy/prod/*.env
    to: ssm
    prefix: /web
    role: arn:aws:iam::444455556666:role/deploy
    region: eu-west-1
";

fn writes(moto: &Moto) -> usize {
    [
        "secretsmanager.CreateSecret",
        "secretsmanager.PutSecretValue",
        "secretsmanager.UpdateSecret",
        "secretsmanager.TagResource",
        "AmazonSSM.PutParameter",
        "AmazonSSM.AddTagsToResource",
    ]
    .iter()
    .map(|t| moto.calls(t))
    .sum()
}

#[test]
fn targets_push_each_environment_into_its_own_account() {
    let moto = Moto::start();
    let sb = Sandbox::new();
    assert_success(&sb.git_in(".", &["init", "-q"]), &["git init"]);
    sb.write(".coffer.yaml", TARGETS);
    sb.encrypted(
        "deploy/staging/web.env",
        "API_KEY=stage-key\nDB_PASSWORD=stage-pw\n",
    );
    sb.encrypted("deploy/prod/web.env", "API_KEY=prod-key\n");
    sb.encrypted("deploy/prod/worker.env", "QUEUE_TOKEN=prod-queue\n");

    let out = run_as(&sb, &moto, &["push", "--dry-run"], &[]);
    assert_success(&out, &["push --dry-run"]);
    assert_eq!(
        stdout(&out),
        "staging: Secrets Manager in account 111111111111, eu-west-1\n\
         + web/API_KEY\n+ web/DB_PASSWORD\n\
         Plan: 2 to create, 0 to update, 0 unchanged, 0 to delete.\n\
         \n\
         prod: Parameter Store in account 444455556666, eu-west-1\n\
         + /web/API_KEY\n+ /web/QUEUE_TOKEN\n\
         Plan: 2 to create, 0 to update, 0 unchanged, 0 to delete.\n"
    );
    assert_eq!(writes(&moto), 0);

    // Not in step yet: --check says so with exit 10 and writes nothing.
    let out = run_as(&sb, &moto, &["push", "--check"], &[]);
    assert_error(
        &out,
        10,
        "coffer: 4 change(s) to make: AWS differs from the files",
    );
    assert_eq!(writes(&moto), 0);

    let out = run_as(&sb, &moto, &["push"], &[]);
    assert_success(&out, &["push"]);
    assert!(!stdout(&out).contains("stage-pw") && !stderr(&out).contains("stage-pw"));
    let staging = moto.as_role("arn:aws:iam::111111111111:role/deploy", "eu-west-1");
    let prod = moto.as_role("arn:aws:iam::444455556666:role/deploy", "eu-west-1");
    let rt = Moto::rt();
    let sm = aws_sdk_secretsmanager::Client::new(&staging);
    let secret = rt
        .block_on(sm.get_secret_value().secret_id("web/DB_PASSWORD").send())
        .unwrap();
    assert_eq!(secret.secret_string(), Some("stage-pw"));
    assert!(secret
        .arn()
        .unwrap()
        .starts_with("arn:aws:secretsmanager:eu-west-1:111111111111:"));
    let param = rt
        .block_on(
            aws_sdk_ssm::Client::new(&prod)
                .get_parameter()
                .name("/web/QUEUE_TOKEN")
                .with_decryption(true)
                .send(),
        )
        .unwrap()
        .parameter
        .unwrap();
    assert_eq!(param.value(), Some("prod-queue"));
    assert!(param.arn().unwrap().contains(":444455556666:"), "{param:?}");
    // Nothing landed in the account the endpoint's own credentials act in.
    assert!(moto.secret("web/DB_PASSWORD").is_none());
    assert!(moto.parameter("/web/QUEUE_TOKEN").is_none());

    // In step: a second run and --check write nothing and exit 0.
    let before = writes(&moto);
    let out = run_as(&sb, &moto, &["push", "--check"], &[]);
    assert_success(&out, &["push --check"]);
    assert!(stdout(&out).contains("Plan: 0 to create, 0 to update, 2 unchanged, 0 to delete."));
    assert_success(&run_as(&sb, &moto, &["push"], &[]), &["push again"]);
    assert_eq!(writes(&moto), before);

    // One value changes: --check exits 10 naming the change; --target limits the run.
    sb.ok(&[
        "set",
        "deploy/staging/web.env",
        "[\"API_KEY\"]",
        "\"stage-key-2\"",
    ]);
    let out = run_as(&sb, &moto, &["push", "--check"], &[]);
    assert_error(&out, 10, "coffer: 1 change(s) to make");
    assert!(
        stdout(&out).contains("~ web/API_KEY (value changed)\n"),
        "{}",
        stdout(&out)
    );
    let out = run_as(&sb, &moto, &["push", "--target", "prod"], &[]);
    assert_success(&out, &["push --target prod"]);
    assert!(stdout(&out).starts_with("prod: Parameter Store in account 444455556666"));
    assert!(!stdout(&out).contains("staging"));
    assert_eq!(writes(&moto), before);
    assert_success(
        &run_as(&sb, &moto, &["push", "--target", "staging"], &[]),
        &["push staging"],
    );
    let secret = rt
        .block_on(sm.get_secret_value().secret_id("web/API_KEY").send())
        .unwrap();
    assert_eq!(secret.secret_string(), Some("stage-key-2"));
    assert_success(
        &run_as(&sb, &moto, &["push", "--check"], &[]),
        &["in step again"],
    );

    // A name that is no target is a usage error listing the targets.
    assert_error(
        &run_as(&sb, &moto, &["push", "--target", "qa"], &[]),
        2,
        "(it has: staging, prod)",
    );
}

/// The target of the settings test: one secret per value, in the default account.
fn settings_config(description: &str, key: &str, tags: &str) -> String {
    format!(
        "push:\n  - name: web\n    files: web.env\n    to: secretsmanager\n    prefix: web/\n    description: {description}\n    kms_key_id: {key}\n    tags:\n{tags}"
    )
}

#[test]
fn changed_settings_are_planned_and_applied_and_hand_made_tags_stay() {
    let moto = Moto::start();
    let sb = Sandbox::new();
    let rt = Moto::rt();
    let kms = aws_sdk_kms::Client::new(&moto.sdk_config());
    for alias in ["alias/one", "alias/two"] {
        let key = rt.block_on(kms.create_key().send()).unwrap();
        rt.block_on(
            kms.create_alias()
                .alias_name(alias)
                .target_key_id(key.key_metadata().unwrap().key_id())
                .send(),
        )
        .unwrap();
    }
    sb.encrypted("web.env", "API_KEY=k1\n");
    sb.write(
        ".coffer.yaml",
        settings_config("web v1", "alias/one", "      team: web\n      env: prod\n"),
    );
    assert_success(&run_as(&sb, &moto, &["push"], &[]), &["first push"]);
    let sm = aws_sdk_secretsmanager::Client::new(&moto.sdk_config());
    let describe = || {
        rt.block_on(sm.describe_secret().secret_id("web/API_KEY").send())
            .unwrap()
    };
    let tags = |d: &aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput| {
        let mut t: Vec<String> = d
            .tags()
            .iter()
            .map(|t| format!("{}={}", t.key().unwrap(), t.value().unwrap()))
            .collect();
        t.sort();
        t
    };
    let d = describe();
    assert_eq!(d.description(), Some("web v1"));
    assert_eq!(
        tags(&d),
        [
            "coffer:source=web.env",
            "coffer:tags=env+team",
            "coffer:target=web",
            "env=prod",
            "managed-by=coffer",
            "team=web"
        ]
    );
    // Someone tags the secret by hand.
    rt.block_on(
        sm.tag_resource()
            .secret_id("web/API_KEY")
            .tags(
                aws_sdk_secretsmanager::types::Tag::builder()
                    .key("owner")
                    .value("ops")
                    .build(),
            )
            .send(),
    )
    .unwrap();

    // In step (the alias and the key it names compare equal): nothing to do.
    let out = run_as(&sb, &moto, &["push", "--check"], &[]);
    assert_success(&out, &["push --check in step"]);

    // AWS names the key by ARN where the config names an alias: the same key, in step.
    let one = rt
        .block_on(kms.describe_key().key_id("alias/one").send())
        .unwrap()
        .key_metadata
        .unwrap()
        .arn
        .unwrap();
    rt.block_on(
        sm.update_secret()
            .secret_id("web/API_KEY")
            .kms_key_id(&one)
            .send(),
    )
    .unwrap();
    assert_success(
        &run_as(&sb, &moto, &["push", "--check"], &[]),
        &["an alias and its key's ARN compare equal"],
    );

    // The settings change: a new description, key and tags; the value stays.
    sb.write(
        ".coffer.yaml",
        settings_config("web v2", "alias/two", "      team: api\n"),
    );
    let out = run_as(&sb, &moto, &["push", "--check"], &[]);
    assert_error(&out, 10, "1 change(s) to make");
    assert!(
        stdout(&out).contains("~ web/API_KEY (settings: description, KMS key, tags)\n"),
        "{}",
        stdout(&out)
    );
    let versions = moto.secret_versions("web/API_KEY");
    assert_success(&run_as(&sb, &moto, &["push"], &[]), &["push settings"]);
    let d = describe();
    assert_eq!(d.description(), Some("web v2"));
    assert_eq!(d.kms_key_id(), Some("alias/two"));
    assert_eq!(
        tags(&d),
        [
            "coffer:source=web.env",
            "coffer:tags=team",
            "coffer:target=web",
            "managed-by=coffer",
            "owner=ops",
            "team=api"
        ]
    );
    assert_eq!(
        moto.secret_versions("web/API_KEY"),
        versions,
        "the value was not rewritten"
    );
    assert_eq!(moto.secret_value("web/API_KEY"), "k1");

    // And then in step.
    let before =
        moto.calls("secretsmanager.UpdateSecret") + moto.calls("secretsmanager.TagResource");
    let out = run_as(&sb, &moto, &["push"], &[]);
    assert_eq!(
        stdout(&out),
        "web: Secrets Manager in account 123456789012, us-east-1\n  web/API_KEY (unchanged)\n\
         Plan: 0 to create, 0 to update, 1 unchanged, 0 to delete.\n"
    );
    assert_eq!(
        moto.calls("secretsmanager.UpdateSecret") + moto.calls("secretsmanager.TagResource"),
        before
    );
}

#[test]
fn large_parameters_use_the_advanced_tier_and_parameter_settings_follow() {
    let moto = Moto::start();
    let sb = Sandbox::new();
    let big = "x".repeat(5000);
    sb.encrypted("app.env", format!("BIG={big}\nSMALL=s\n"));
    let push = |extra: &[&str]| {
        let mut args = vec!["push", "app.env", "--to", "ssm", "--path", "/app"];
        args.extend_from_slice(extra);
        run_as(&sb, &moto, &args, &[])
    };
    let out = push(&["--dry-run"]);
    assert_eq!(
        stdout(&out),
        "+ /app/BIG (advanced tier)\n+ /app/SMALL\nPlan: 2 to create, 0 to update, 0 unchanged, 0 to delete.\n"
    );
    assert_success(&push(&["--tag", "team=web"]), &["push"]);
    let ssm = aws_sdk_ssm::Client::new(&moto.sdk_config());
    let rt = Moto::rt();
    let tier = |name: &str| {
        rt.block_on(
            ssm.describe_parameters()
                .parameter_filters(
                    aws_sdk_ssm::types::ParameterStringFilter::builder()
                        .key("Name")
                        .values(name)
                        .build()
                        .unwrap(),
                )
                .send(),
        )
        .unwrap()
        .parameters()[0]
            .tier()
            .unwrap()
            .as_str()
            .to_string()
    };
    assert_eq!(tier("/app/BIG"), "Advanced");
    assert_eq!(tier("/app/SMALL"), "Standard");
    assert_eq!(moto.parameter("/app/BIG").unwrap().0, big);

    // A changed tag is a tag call, not a new version; a new description is a write.
    let out = push(&["--tag", "team=api", "--description", "app"]);
    assert_success(&out, &["push settings"]);
    assert!(
        stdout(&out).contains("~ /app/SMALL (settings: description, tags)\n"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("~ /app/BIG (settings: description, tags; advanced tier)\n"),
        "{}",
        stdout(&out)
    );
    let tags = rt
        .block_on(
            ssm.list_tags_for_resource()
                .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
                .resource_id("/app/SMALL")
                .send(),
        )
        .unwrap();
    assert!(tags
        .tag_list()
        .iter()
        .any(|t| t.key() == "team" && t.value() == "api"));
    assert_eq!(moto.parameter("/app/SMALL").unwrap().2, 2);
    // In step: found by one filtered listing, no parameter's tags read one by one.
    let reads = moto.calls("AmazonSSM.ListTagsForResource");
    assert_success(
        &push(&["--tag", "team=api", "--description", "app", "--check"]),
        &["in step"],
    );
    assert_eq!(moto.calls("AmazonSSM.ListTagsForResource"), reads);

    // A key that cannot be resolved is not compared (nor planned on every run): said once.
    let out = push(&[
        "--tag",
        "team=api",
        "--description",
        "app",
        "--kms-key-id",
        "alias/nowhere",
        "--check",
    ]);
    assert_success(&out, &["unresolvable key"]);
    assert!(
        stderr(&out).contains(
            "coffer: warning: the KMS key of 2 secret(s) was not compared: kms:DescribeKey did not resolve it or the target's\n"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_target_prunes_what_its_deleted_files_made_and_emits_ecs_by_target() {
    let moto = Moto::start();
    let sb = Sandbox::new();
    assert_success(&sb.git_in(".", &["init", "-q"]), &["git init"]);
    sb.write(
        "ops/targets.yaml",
        "push:\n  - name: web\n    files: ../deploy/*.env\n    to: secretsmanager\n    prefix: web/\n    prune: true\n",
    );
    // `..` is refused: targets name files below the config file.
    let out = run_as(&sb, &moto, &["--config", "ops/targets.yaml", "push"], &[]);
    assert_error(
        &out,
        1,
        "push target \"web\": files are globs relative to the config file, without ..",
    );
    // A second target pushes the same files under a longer prefix: neither prunes the
    // other's secrets, though each lists them.
    sb.write(
        "ops/targets.yaml",
        "push:\n  - name: web\n    files: ./deploy/*.env\n    to: secretsmanager\n    prefix: web/\n    prune: true\n  - name: nested\n    files: deploy/a.env\n    to: secretsmanager\n    prefix: web/nested/\n    prune: true\n",
    );
    sb.encrypted("ops/deploy/a.env", "A_KEY=a\n");
    sb.encrypted("ops/deploy/b.env", "B_KEY=b\n");
    // Another file of the repository made a secret under the same prefix: never pruned.
    sb.encrypted("other.env", "OTHER=o\n");
    assert_success(
        &run_as(
            &sb,
            &moto,
            &[
                "push",
                "other.env",
                "--to",
                "secretsmanager",
                "--prefix",
                "web/",
                "--each",
            ],
            &[],
        ),
        &["push other.env"],
    );
    let out = run_as(
        &sb,
        &moto,
        &["--config", "ops/targets.yaml", "push", "--emit", "ecs"],
        &[],
    );
    assert_success(&out, &["push --emit ecs"]);
    let ecs: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(ecs["nested"][0]["name"], "A_KEY", "{ecs}");
    let web = ecs["web"].as_array().unwrap();
    assert_eq!(web.len(), 2, "{ecs}");
    assert_eq!(web[0]["name"], "A_KEY");
    assert!(web[0]["valueFrom"]
        .as_str()
        .unwrap()
        .starts_with("arn:aws:secretsmanager:us-east-1:123456789012:secret:web/A_KEY-"));
    assert_eq!(
        moto.secret("web/B_KEY")
            .unwrap()
            .tags
            .iter()
            .find(|t| t.0 == "coffer:source")
            .unwrap()
            .1,
        "ops/deploy/b.env"
    );

    // b.env leaves the repository: its secret goes; other.env's stays.
    std::fs::remove_file(sb.path("ops/deploy/b.env")).unwrap();
    let out = run_as(&sb, &moto, &["--config", "ops/targets.yaml", "push"], &[]);
    assert_success(&out, &["push after removing b.env"]);
    assert!(stdout(&out).contains("\n- web/B_KEY\n"), "{}", stdout(&out));
    assert!(!stdout(&out).contains("OTHER"), "{}", stdout(&out));
    assert!(moto.secret("web/B_KEY").unwrap().deleted);
    assert!(!moto.secret("web/OTHER").unwrap().deleted);
    assert!(!moto.secret("web/nested/A_KEY").unwrap().deleted);
    let again = run_as(
        &sb,
        &moto,
        &["--config", "ops/targets.yaml", "push", "--check"],
        &[],
    );
    assert_success(&again, &["in step after pruning"]);

    // A target whose files all went would prune everything it made: refused.
    std::fs::remove_file(sb.path("ops/deploy/a.env")).unwrap();
    let out = run_as(
        &sb,
        &moto,
        &["--config", "ops/targets.yaml", "push", "--target", "nested"],
        &[],
    );
    assert_error(
        &out,
        1,
        "coffer: target nested: no file matches deploy/a.env, and pruning would delete everything it made",
    );
    assert!(!moto.secret("web/nested/A_KEY").unwrap().deleted);
}

#[test]
fn bad_push_lists_and_flags_are_refused_before_any_call() {
    let sb = Sandbox::new();
    let cases = [
        ("push:\n  - files: a.env\n    to: ssm\n    prefix: /a\n", "push target 1: has no name"),
        ("push:\n  - name: a\n    files: a.env\n    prefix: /a\n", "push target \"a\": has no to: (secretsmanager or ssm)"),
        ("push:\n  - name: a\n    files: a.env\n    to: ssm\n    secret: x\n", "push target \"a\": Parameter Store takes a prefix (one parameter per value)"),
        ("push:\n  - name: a\n    files: a.env\n    to: secretsmanager\n    prefix: p/\n    secret: x\n", "push target \"a\": give prefix or secret, not both"),
        ("push:\n  - name: a\n    files: a.env\n    to: secretsmanager\n    secret: x\n    prune: true\n", "push target \"a\": prune needs a prefix"),
        ("push:\n  - name: a\n    files: a.env\n    to: secretsmanager\n    prefix: p/\n    tags:\n      managed-by: me\n", "push target \"a\": the tag \"managed-by\" is coffer's own"),
        ("push:\n  - name: a\n    files: a.env\n    to: s3\n    prefix: p/\n", "push target \"a\": to: \"s3\" is not secretsmanager or ssm"),
        ("creation_rules: []\n", "has no push: targets; add some, or give push a FILE"),
        ("push:\n  - name: a\n    files: a.env\n    to: secretsmanager\n    prefix: p/\n    kms-key-id: k\n", "push target \"a\": unknown setting \"kms-key-id\" (known: name, files,"),
        ("push:\n  - name: a\n    files: a.env\n    to: secretsmanager\n    prefix: \"\"\n", "push target \"a\": an empty prefix would list and prune the whole account"),
        ("push:\n  - name: a b,c\n    files: a.env\n    to: secretsmanager\n    prefix: p/\n", "push target \"a b,c\": the tag \"coffer:target\": keys and values have only letters"),
        ("push:\n  - name: a\n    files: a.env\n    to: secretsmanager\n    prefix: p/\n    tags:\n      team: a,b\n", "push target \"a\": the tag \"team\": keys and values have only letters"),
    ];
    for (config, message) in cases {
        sb.write(".coffer.yaml", config);
        let out = sb.run(&["push"]);
        assert_error(&out, 1, message);
    }
    sb.write(
        ".coffer.yaml",
        "push:\n  - name: a\n    files: a.env\n    to: secretsmanager\n    prefix: p/\n",
    );
    assert_error(
        &sb.run(&["push", "--tag", "a=b"]),
        2,
        "coffer: --tag is for `push FILE`; a target sets it in the config's push: list",
    );
    assert_error(
        &sb.run(&["push", "a.env", "--prefix", "p/", "--each"]),
        2,
        "coffer: push FILE needs --to secretsmanager or --to ssm",
    );
}

/// One `migrate s3` fills every account: each S3 prefix goes to its push target (service,
/// role, region, prefix); the dry run shows each line's account and what the real run
/// refuses. `migrate refs` then names each secret's target, and `render` reads every
/// reference in its own account.
#[test]
fn migrate_moves_each_prefix_into_its_targets_account_and_refs_follow() {
    let moto = Moto::start();
    let sb = Sandbox::new();
    sb.write(".coffer.yaml", TARGETS);
    moto.put_object("legacy", "staging/db", "stage-db");
    moto.put_object("legacy", "staging/big", &"x".repeat(70_000));
    moto.put_object("legacy", "prod/db", "prod-db");
    moto.put_object("legacy", "prod/bad name", "x");
    moto.put_object("legacy", "other/token", "untouched");
    let template = "a={{ secret s3://legacy/staging/db }}\nb={{ secret s3://legacy/prod/db }}\nc={{ secret s3://legacy/other/token }}\n";
    sb.write("app.tmpl", template);
    let before = run_as(&sb, &moto, &["render", "app.tmpl"], &[]);
    assert_success(&before, &["render before"]);

    let migrate = [
        "migrate",
        "s3",
        "--bucket",
        "legacy",
        "--target",
        "staging/=staging",
        "--target",
        "prod/=prod",
    ];
    let out = run_as(&sb, &moto, &[&migrate[..], &["--dry-run"]].concat(), &[]);
    assert_success(&out, &["migrate --dry-run"]);
    let table = stdout(&out);
    for line in [
        "s3://legacy/staging/big    web/big        111111111111  FAILED: the object has 70000 bytes, and a Secrets Manager secret holds at most 65536",
        "s3://legacy/staging/db     web/db         111111111111  would create",
        "s3://legacy/prod/bad name  /web/bad name  444455556666  FAILED: not a valid name: a parameter name has only letters, digits and /_.-",
        "s3://legacy/prod/db        /web/db        444455556666  would create",
    ] {
        assert!(table.contains(line), "{line}\n{table}");
    }
    assert_eq!(table.lines().count(), 5, "{table}");
    assert_eq!(writes(&moto), 0);
    // A prefix routed twice is a mistake.
    assert_error(
        &run_as(
            &sb,
            &moto,
            &[
                "migrate",
                "s3",
                "--bucket",
                "legacy",
                "--target",
                "prod/=prod",
                "--target",
                "prod/=staging",
                "--dry-run",
            ],
            &[],
        ),
        2,
        "--target \"prod/\" is given twice",
    );

    // The real run moves what it can, into each account, and exits 9 for the rest.
    let out = run_as(&sb, &moto, &migrate, &[]);
    assert_eq!(out.status.code(), Some(9), "{}", stderr(&out));
    assert!(
        stdout(&out)
            .contains("s3://legacy/prod/db        /web/db        444455556666  created, verified"),
        "{}",
        stdout(&out)
    );
    let staging = moto.as_role("arn:aws:iam::111111111111:role/deploy", "eu-west-1");
    let prod = moto.as_role("arn:aws:iam::444455556666:role/deploy", "eu-west-1");
    let rt = Moto::rt();
    let secret = rt
        .block_on(
            aws_sdk_secretsmanager::Client::new(&staging)
                .get_secret_value()
                .secret_id("web/db")
                .send(),
        )
        .unwrap();
    assert_eq!(secret.secret_string(), Some("stage-db"));
    let param = rt
        .block_on(
            aws_sdk_ssm::Client::new(&prod)
                .get_parameter()
                .name("/web/db")
                .with_decryption(true)
                .send(),
        )
        .unwrap();
    assert_eq!(param.parameter.unwrap().value(), Some("prod-db"));

    // References follow, each naming its target; the dry run shows the account.
    let refs = [
        "migrate",
        "refs",
        "app.tmpl",
        "--from",
        "s3",
        "--target",
        "staging/=staging",
        "--target",
        "prod/=prod",
    ];
    let out = run_as(&sb, &moto, &[&refs[..], &["--dry-run"]].concat(), &[]);
    assert_success(&out, &["migrate refs --dry-run"]);
    assert_eq!(
        stdout(&out),
        "changed app.tmpl:1: s3://legacy/staging/db -> awsSecret://web/db?target=staging (account 111111111111)\n\
         changed app.tmpl:2: s3://legacy/prod/db -> ssm:///web/db?target=prod (account 444455556666)\n\
         left    app.tmpl:3: s3://legacy/other/token (no --target for it)\n"
    );
    assert_eq!(sb.read_str("app.tmpl"), template);
    assert_success(&run_as(&sb, &moto, &refs, &[]), &["migrate refs"]);
    assert_eq!(
        sb.read_str("app.tmpl"),
        "a={{ secret awsSecret://web/db?target=staging }}\nb={{ secret ssm:///web/db?target=prod }}\nc={{ secret s3://legacy/other/token }}\n"
    );
    let after = run_as(&sb, &moto, &["render", "app.tmpl"], &[]);
    assert_success(&after, &["render after"]);
    assert_eq!(stdout(&after), stdout(&before));
    assert_eq!(stdout(&after), "a=stage-db\nb=prod-db\nc=untouched\n");
}
