//! `coffer team`: people join and leave by name. The rules file is edited in place
//! (`team`), checked by reading it back, and the repository's files re-keyed by the same
//! plan `updatekeys` makes; a person who leaves takes no data key with them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::keys::{finish, found, plan, print_plan, Rules};
use super::{say, Env};
use coffer::config::Config;
use coffer::rekey::{self, Rotation};
use coffer::team::{self, Member};
use coffer::{sops, Error, Result};

#[derive(Subcommand, Debug)]
pub enum TeamCommand {
    /// Add a person: their key under keys: and in the creation rules, then the files re-wrapped
    #[command(
        after_help = "Examples:\n  coffer team add carol age1… --dry-run       # the rules change and the plan\n  coffer team add carol age1… -y\n  coffer team add carol age1… --path-regex '^dev/' -y   # only that rule"
    )]
    Add {
        /// The person's name, as an anchor of the rules file (letters, digits, - and _)
        name: String,
        /// Their age recipient (`coffer keygen` prints it)
        recipient: String,
        /// Only the creation rules with this path_regex (repeat for several; default: every rule)
        #[arg(long = "path-regex", value_name = "REGEX")]
        path_regex: Vec<String>,
        /// Print the change and the plan, and change nothing
        #[arg(long)]
        dry_run: bool,
        /// Apply without asking
        #[arg(short = 'y', long)]
        yes: bool,
    },
    /// Remove a person from the rules; every file they could open gets a new data key
    #[command(
        after_help = "Examples:\n  coffer team remove bob --dry-run\n  coffer team remove bob -y"
    )]
    Remove {
        /// The person's name in the rules file
        name: String,
        /// Print the change and the plan, and change nothing
        #[arg(long)]
        dry_run: bool,
        /// Apply without asking
        #[arg(short = 'y', long)]
        yes: bool,
    },
    /// List the people of the rules file, their keys, and how many files each opens
    #[command(after_help = "Example:\n  coffer team list")]
    List,
}

/// The rules file: --config, else the nearest one above the current directory.
fn rules_file(config: Option<&Path>) -> Result<PathBuf> {
    if let Some(c) = config {
        return Ok(c.to_path_buf());
    }
    let cwd = std::env::current_dir().map_err(|e| Error::io(".", e))?;
    coffer::config::find(&cwd).ok_or_else(|| {
        Error::Refused(
            "no .coffer.yaml or .sops.yaml here or above; write one with creation_rules first"
                .into(),
        )
    })
}

/// The encrypted files the rules file governs: the repository's, else those below it.
fn files_of(file: &Path) -> Result<Vec<coffer::git::workspace::Found>> {
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if git2::Repository::discover(dir).is_ok() {
        found(true, &[])
    } else {
        found(false, &[dir.to_path_buf()])
    }
}

pub fn run(cmd: TeamCommand, config: Option<&Path>, env: &Env) -> Result<()> {
    let file = rules_file(config)?;
    let name = file.display().to_string();
    let text = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
    let bad = |error| Error::Team {
        file: name.clone(),
        error,
    };
    match cmd {
        TeamCommand::List => list(&file, &text, bad),
        TeamCommand::Add {
            name: who,
            recipient,
            path_regex,
            dry_run,
            yes,
        } => {
            coffer::keys::age::parse_recipient(recipient.trim())
                .map_err(|e| Error::Usage(e.to_string()))?;
            let key = recipient.trim();
            let edited = team::add(&text, &who, key, &path_regex).map_err(bad)?;
            let member = Member {
                name: who,
                key: key.to_string(),
            };
            change(
                config, &file, &text, edited, &member, true, dry_run, yes, env,
            )
        }
        TeamCommand::Remove {
            name: who,
            dry_run,
            yes,
        } => {
            let (edited, member) = team::remove(&text, &who).map_err(bad)?;
            change(
                config, &file, &text, edited, &member, false, dry_run, yes, env,
            )
        }
    }
}

/// The rules as they would be after `edited`, checked to differ from `text`'s by exactly
/// the member's key in the rules it names, nothing else.
fn checked(
    file: &Path,
    text: &str,
    edited: &team::Edited,
    m: &Member,
    added: bool,
) -> Result<Config> {
    let before = Config::parse(file, text)?;
    let after = Config::parse(file, &edited.text)?;
    let bad = |why: String| Error::Config {
        file: file.display().to_string(),
        message: format!("the change would not read back as meant ({why}); nothing was written"),
    };
    if before.rules.len() != after.rules.len() {
        return Err(bad("the number of creation rules changed".into()));
    }
    let ages = |r: &coffer::config::CreationRule| {
        let mut all = r.age.clone();
        all.extend(r.groups.iter().flat_map(|g| g.age.clone()));
        all
    };
    for (n, ((_, b), (_, a))) in before.rules.iter().zip(&after.rules).enumerate() {
        let touched = edited.rules.contains(&(n + 1));
        let mut want = ages(b);
        if touched && added {
            want.push(m.key.clone());
        } else if touched {
            want.retain(|k| *k != m.key);
        }
        if ages(a) != want || a.kms != b.kms || a.pgp != b.pgp || a.path_regex != b.path_regex {
            return Err(bad(format!(
                "creation rule {} would change otherwise",
                n + 1
            )));
        }
        // What the edit could not reach (a key written in a merged mapping, say).
        if !added && ages(a).contains(&m.key) {
            return Err(bad(format!(
                "{} would still be in creation rule {} (through an anchor or a merge key): remove the key there by hand",
                m.name,
                n + 1
            )));
        }
        let no_keys =
            a.age.is_empty() && a.kms.is_empty() && a.pgp.is_empty() && a.groups.is_empty();
        if touched && !added && no_keys {
            return Err(bad(format!(
                "creation rule {} would name no keys: add someone to it first",
                n + 1
            )));
        }
    }
    Ok(after)
}

#[allow(clippy::too_many_arguments)]
fn change(
    explicit: Option<&Path>,
    file: &Path,
    text: &str,
    edited: team::Edited,
    m: &Member,
    added: bool,
    dry_run: bool,
    yes: bool,
    env: &Env,
) -> Result<()> {
    let after = checked(file, text, &edited, m, added)?;
    let rules_list = edited
        .rules
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let shown = file.display();
    if added {
        super::print_out(&format!(
            "{shown}: + {} ({}) in creation rule(s) {rules_list}\n",
            m.name, m.key
        ))?;
    } else if edited.rules.is_empty() {
        super::print_out(&format!(
            "{shown}: - {} ({}), who is in no creation rule\n",
            m.name, m.key
        ))?;
    } else {
        super::print_out(&format!(
            "{shown}: - {} ({}) from creation rule(s) {rules_list}\n",
            m.name, m.key
        ))?;
    }
    // The plan is made with the rules as they will be.
    let at = match explicit {
        Some(p) => p.to_path_buf(),
        None => std::fs::canonicalize(file).map_err(|e| Error::io(file, e))?,
    };
    let mut rules = Rules {
        explicit,
        loaded: HashMap::from([(at, after)]),
    };
    let plan = plan(files_of(file)?, Rotation::OnRemoval, &mut rules, false)?;
    let mut names = rules.names();
    names.extend(coffer::config::key_names(&edited.text));
    names.insert(m.key.clone(), m.name.clone());
    print_plan(&plan, &names)?;
    if !added {
        let with_kms =
            plan.changes
                .iter()
                .filter(|p| {
                    p.change
                        .removed
                        .iter()
                        .any(|k| rekey::key_of_label(k) == m.key)
                })
                .filter(|p| {
                    sops::read_metadata(&p.found.name, p.found.format, p.found.bytes.clone())
                        .is_ok_and(|(_, meta, _)| {
                            !meta.kms.is_empty() || meta.groups.iter().any(|g| !g.kms.is_empty())
                        })
                })
                .count();
        if with_kms > 0 {
            super::print_out(&format!(
                "{with_kms} of these file(s) are also opened by KMS keys, which coffer cannot revoke: remove {}'s IAM access to those keys too\n",
                m.name
            ))?;
        }
    }
    if dry_run {
        return Ok(());
    }
    if !yes && !super::keys::confirm("team")? {
        say("nothing changed");
        return Ok(());
    }
    coffer::fsutil::write_atomic(
        file,
        edited.text.as_bytes(),
        0o644,
        None,
        coffer::fsutil::Target::InPlace,
    )?;
    // The rules file is staged where it is in a git repository, beside the re-keyed files.
    coffer::git::stage_file(file)?;
    finish(plan, false, true, "team", env, false)
}

fn list(file: &Path, text: &str, bad: impl Fn(team::TeamError) -> Error) -> Result<()> {
    let members = team::members(text).map_err(bad)?;
    let mut opens: HashMap<&str, usize> = HashMap::new();
    for f in files_of(file)? {
        let (_, meta, _) = sops::read_metadata(&f.name, f.format, f.bytes.clone())?;
        let labels = rekey::labels(&coffer::keys::Recipients::of(&meta));
        for m in &members {
            if labels.iter().any(|l| rekey::key_of_label(l) == m.key) {
                *opens.entry(m.key.as_str()).or_default() += 1;
            }
        }
    }
    let w = members
        .iter()
        .map(|m| m.name.len())
        .max()
        .unwrap_or(0)
        .max(4);
    let mut out = format!("{:w$}  FILES  KEY\n", "NAME");
    for m in &members {
        let n = opens.get(m.key.as_str()).copied().unwrap_or(0);
        out.push_str(&super::command_error::one_line(&format!(
            "{:w$}  {n:>5}  {}",
            m.name, m.key
        )));
        out.push('\n');
    }
    super::print_out(&out)
}
