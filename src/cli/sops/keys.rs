//! The master keys of a file, sops's way: `rotate` with `--add-*`/`--rm-*`,
//! `updatekeys` against `.sops.yaml`, and `groups add|delete`.

use super::args::{GroupsCommand, KeyChangeFlags, UpdatekeysArgs};
use super::*;
use coffer::sops::OpenOptions;

impl KeyChangeFlags {
    /// Whether any key is to be added or removed.
    pub(super) fn any(&self) -> bool {
        [
            &self.add_kms,
            &self.rm_kms,
            &self.add_age,
            &self.rm_age,
            &self.add_pgp,
            &self.rm_pgp,
            &self.add_gcp_kms,
            &self.rm_gcp_kms,
            &self.add_azure_kv,
            &self.rm_azure_kv,
            &self.add_hc_vault_transit,
            &self.rm_hc_vault_transit,
            &self.add_hckms,
            &self.rm_hckms,
        ]
        .iter()
        .any(|f| f.as_deref().is_some_and(|v| !v.is_empty()))
    }

    fn refuse_other_keys(&self) -> Result<()> {
        refuse_unusable([
            (
                "--add-gcp-kms/--rm-gcp-kms (GCP KMS)",
                given(&self.add_gcp_kms) || given(&self.rm_gcp_kms),
            ),
            (
                "--add-azure-kv/--rm-azure-kv (Azure Key Vault)",
                given(&self.add_azure_kv) || given(&self.rm_azure_kv),
            ),
            (
                "--add-hc-vault-transit/--rm-hc-vault-transit (HashiCorp Vault)",
                given(&self.add_hc_vault_transit) || given(&self.rm_hc_vault_transit),
            ),
            (
                "--add-hckms/--rm-hckms (HuaweiCloud KMS)",
                given(&self.add_hckms) || given(&self.rm_hckms),
            ),
        ])
    }
}

/// A new data key for `file`, with keys added to its first group and removed from
/// every group, as sops's rotate does.
pub(super) fn rotate(
    file: &Path,
    io: &IoFlags,
    change: &KeyChangeFlags,
    encryption_context: &Option<String>,
    missing: u8,
    env: &Env,
) -> Result<()> {
    change.refuse_other_keys()?;
    io.check()?;
    if change.any() && std::fs::symlink_metadata(file).is_err() {
        return fail(codes::CANNOT_CHANGE_KEYS_FROM_NON_EXISTENT_FILE, format!("Error: cannot add or remove keys on non-existent file {:?}, use the `edit` subcommand instead.", absolute(file).display().to_string()));
    }
    let name = io.filename_override.as_deref().unwrap_or(file);
    let (input, output) = types(Some(name), io.input_type, io.output_type);
    if output != input {
        return fail(
            codes::ERROR_GENERIC,
            "coffer rotates a file in its own type: --output-type differs from the input's",
        );
    }
    let context = context(encryption_context)?;
    let (label, bytes) = read_input(Some(file), missing)?;
    let opened = sops::open(
        &label,
        input,
        bytes,
        &env.keyring()?,
        OpenOptions::default(),
    )?;
    let mut wanted = Recipients::of(&opened.meta);
    {
        let first = match wanted.groups.first_mut() {
            Some(g) => g,
            None => &mut wanted,
        };
        for r in list(&change.add_age) {
            if !first.age.contains(&r) {
                first.age.push(r);
            }
        }
        for k in list(&change.add_kms) {
            let spec = KmsSpec::parse(&k, &context, None)?;
            if !first.kms.iter().any(|c| c.arn == spec.arn) {
                first.kms.push(spec);
            }
        }
        for fp in list(&change.add_pgp) {
            if !first.pgp.contains(&fp) {
                first.pgp.push(fp);
            }
        }
    }
    let (rm_age, rm_kms, rm_pgp) = (
        list(&change.rm_age),
        list(&change.rm_kms),
        list(&change.rm_pgp),
    );
    let rm_kms: Vec<String> = rm_kms
        .iter()
        .map(|k| k.split('+').next().unwrap_or_default().to_string())
        .collect();
    let mut prune = |r: &mut Recipients| {
        r.age.retain(|a| !rm_age.contains(a));
        r.kms.retain(|k| !rm_kms.contains(&k.arn));
        r.pgp.retain(|p| !rm_pgp.contains(p));
    };
    prune(&mut wanted);
    wanted.groups.iter_mut().for_each(&mut prune);
    if wanted.is_empty() || wanted.groups.iter().any(Recipients::is_empty) {
        return fail(
            codes::ERROR_GENERIC,
            "Could not generate data key: [empty key group provided]",
        );
    }
    super::super::crypt::warn_dropped_keys(&label, &opened.meta);
    let out = env.accept(coffer::rekey::rekey(
        &opened,
        &wanted,
        true,
        env.wrappers(),
    )?)?;
    write_output(io, Some(file), &out, false)
}

/// A master key as sops names it in updatekeys: the recipient, ARN or fingerprint.
fn labels(r: &Recipients) -> Vec<String> {
    r.kms
        .iter()
        .map(|k| k.arn.clone())
        .chain(r.age.iter().cloned())
        .chain(r.pgp.iter().cloned())
        .collect()
}

/// The change sops prints before updating a file's keys; `None` when there is none.
fn key_diff(current: &Recipients, wanted: &Recipients) -> Option<String> {
    let (now, then) = (current.groups_or_self(), wanted.groups_or_self());
    let mut out = String::from("The following changes will be made to the file's groups:\n");
    let mut changed = current.threshold != wanted.threshold && !(now.len() == 1 && then.len() == 1);
    if now.len() > 1 || then.len() > 1 {
        if current.threshold == wanted.threshold {
            out.push_str(&format!("shamir_threshold: {}\n", wanted.threshold));
        } else {
            if current.threshold > 0 {
                out.push_str(&format!("--- shamir_threshold: {}\n", current.threshold));
            }
            out.push_str(&format!("+++ shamir_threshold: {}\n", wanted.threshold));
        }
    }
    for i in 0..now.len().max(then.len()) {
        let old = now.get(i).map(labels).unwrap_or_default();
        let new = then.get(i).map(labels).unwrap_or_default();
        out.push_str(&format!("Group {}\n", i + 1));
        for k in new.iter().filter(|k| old.contains(k)) {
            out.push_str(&format!("    {k}\n"));
        }
        for k in new.iter().filter(|k| !old.contains(k)) {
            changed = true;
            out.push_str(&format!("+++ {k}\n"));
        }
        for k in old.iter().filter(|k| !new.contains(k)) {
            changed = true;
            out.push_str(&format!("--- {k}\n"));
        }
    }
    changed.then_some(out)
}

pub(super) fn updatekeys(a: UpdatekeysArgs, g: &GlobalArgs, env: &Env) -> Result<()> {
    let Some(cfg) = config_file(g)? else {
        return fail(codes::ERROR_GENERIC, "config file not found");
    };
    let config = Config::load(&cfg)?;
    let mut failed = 0;
    for file in &a.files {
        match update_one(file, &config, a.yes, a.input_type, env) {
            Ok(()) => {}
            Err(f) if a.files.len() == 1 => return Err(f),
            Err(f) => {
                CommandError::from(f.error).report_as(f.code);
                failed += 1;
            }
        }
    }
    if failed > 0 {
        return fail(
            codes::ERROR_GENERIC,
            format!("failed updating {failed} key(s)"),
        );
    }
    Ok(())
}

fn update_one(
    file: &Path,
    config: &Config,
    yes: bool,
    input_type: Option<SopsType>,
    env: &Env,
) -> Result<()> {
    let abs = absolute(file);
    if abs.is_dir() {
        return fail(
            codes::ERROR_GENERIC,
            format!("{}: can't operate on a directory", file.display()),
        );
    }
    let (format, _) = types(Some(file), input_type, None);
    let (name, bytes) = read_input(Some(file), codes::ERROR_GENERIC)?;
    let (_, meta, _) = sops::read_metadata(&name, format, bytes.clone())?;
    let rule = match config.rule_for(&abs) {
        None => {
            return fail(
                codes::ERROR_GENERIC,
                "error loading config: no matching creation rules found",
            )
        }
        Some(CreationRule {
            unsupported: Some(why),
            ..
        }) => {
            return Err(Error::Config {
                file: config.file.display().to_string(),
                message: why.clone(),
            }
            .into())
        }
        Some(rule) => rule,
    };
    let wanted = rule.recipients()?;
    if wanted.is_empty() {
        return fail(
            codes::ERROR_GENERIC,
            format!("{name}: its creation rule names no keys"),
        );
    }
    let current = Recipients::of(&meta);
    let Some(diff) = key_diff(&current, &wanted) else {
        super::super::say(&format!("File {} already up to date", abs.display()));
        return Ok(());
    };
    super::super::print_out(&diff)?;
    if !yes && !confirm("Is this okay? (y/n):")? {
        super::super::say(&format!("File {} left unchanged", abs.display()));
        return Ok(());
    }
    let opened = sops::open(
        &name,
        format,
        bytes,
        &env.keyring()?,
        OpenOptions::default(),
    )?;
    let out = env.accept(coffer::rekey::rekey(
        &opened,
        &wanted,
        false,
        env.wrappers(),
    )?)?;
    coffer::fsutil::write_atomic(file, &out, 0o644, None, Target::InPlace)
        .map_err(coded(codes::COULD_NOT_WRITE_OUTPUT_FILE))?;
    super::super::say(&format!("File {} synced with new keys", abs.display()));
    Ok(())
}

pub(super) fn groups(c: GroupsCommand, env: &Env) -> Result<()> {
    let (file, in_place) = match &c {
        GroupsCommand::Add(a) => (a.file.clone(), a.in_place),
        GroupsCommand::Delete(a) => (a.file.clone(), a.in_place),
    };
    let format = type_of_name(&file);
    let (name, bytes) = read_input(Some(&file), codes::COULD_NOT_READ_INPUT_FILE)?;
    let opened = sops::open(
        &name,
        format,
        bytes,
        &env.keyring()?,
        OpenOptions::default(),
    )?;
    let current = Recipients::of(&opened.meta);
    let mut groups = current.groups_or_self();
    let old_threshold = if current.groups.is_empty() {
        0
    } else {
        current.threshold
    };
    let wanted = match c {
        GroupsCommand::Add(a) => {
            refuse_unusable([
                ("--gcp-kms (GCP KMS)", !a.gcp_kms.is_empty()),
                ("--azure-kv (Azure Key Vault)", !a.azure_kv.is_empty()),
                (
                    "--hc-vault-transit (HashiCorp Vault)",
                    !a.hc_vault_transit.is_empty(),
                ),
                ("--hckms (HuaweiCloud KMS)", !a.hckms.is_empty()),
            ])?;
            let context = context(&a.encryption_context)?;
            let group = Recipients {
                age: list(&a.age),
                kms: list(&a.kms)
                    .iter()
                    .map(|k| KmsSpec::parse(k, &context, a.aws_profile.as_deref()))
                    .collect::<coffer::Result<_>>()?,
                pgp: list(&a.pgp),
                ..Recipients::default()
            };
            if group.is_empty() {
                return fail(
                    codes::ERROR_GENERIC,
                    "the new key group names no key: pass --age, --kms or --pgp",
                );
            }
            groups.push(group);
            let threshold = a
                .shamir_secret_sharing_threshold
                .filter(|t| *t > 0)
                .unwrap_or(if old_threshold == 0 {
                    groups.len()
                } else {
                    old_threshold
                });
            split_over(groups, threshold)?
        }
        GroupsCommand::Delete(a) => {
            if a.index >= groups.len() {
                return fail(
                    codes::ERROR_GENERIC,
                    format!(
                        "there is no key group {}: the file has {} (counted from 0)",
                        a.index,
                        groups.len()
                    ),
                );
            }
            groups.remove(a.index);
            let threshold = a
                .shamir_secret_sharing_threshold
                .filter(|t| *t > 0)
                .unwrap_or(old_threshold);
            if groups.is_empty() {
                return fail(
                    codes::ERROR_GENERIC,
                    "removing this key group leaves the file without a key",
                );
            }
            if groups.len() < threshold {
                return fail(codes::ERROR_GENERIC, format!("removing this key group will make the Shamir threshold impossible to satisfy: Shamir threshold is {threshold}, but we only have {} key groups", groups.len()));
            }
            split_over(groups, threshold)?
        }
    };
    let out = env.accept(coffer::rekey::rekey(
        &opened,
        &wanted,
        false,
        env.wrappers(),
    )?)?;
    let io = IoFlags {
        in_place,
        ..IoFlags::default()
    };
    write_output(&io, Some(&file), &out, false)
}

/// Key groups with a threshold; one group is a file that is not split.
fn split_over(mut groups: Vec<Recipients>, threshold: usize) -> Result<Recipients> {
    if groups.len() == 1 {
        return Ok(groups.remove(0));
    }
    if threshold > groups.len() {
        return fail(codes::ERROR_GENERIC, format!("a Shamir threshold of {threshold} needs at least {threshold} key groups; there are {}", groups.len()));
    }
    Ok(Recipients {
        groups,
        threshold,
        ..Recipients::default()
    })
}
