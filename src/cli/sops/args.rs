//! sops 3.x's command line, as clap sees it. Only the parsing lives here: what each
//! flag does is in the parent module.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub(super) const ABOUT: &str =
    "coffer, answering to sops: sops 3.x's command line over coffer's library";

const EXAMPLES: &str = "\
Examples:
  sops -e -i secrets.yaml
  sops -d --extract '[\"db\"][\"password\"]' secrets.yaml
  sops secrets.yaml                                 # edit in $SOPS_EDITOR or $EDITOR
  sops set secrets.yaml '[\"db\"]' '{\"user\": \"u\", \"port\": 5432}'
  sops unset secrets.json '[\"hosts\"][1]'
  sops exec-env secrets.yaml 'echo $db_password'
  sops updatekeys -y secrets.yaml

Exit codes are sops's: 1 generic (a bad config, no keys to encrypt with), 2 cannot read
the input, 3 cannot write the output, 4 the output type cannot hold the values, 6 bad
encryption context, 7 bad set value or path, 8 conflicting flags, 25 a value does not
decrypt, 51 MAC mismatch, 91 bad tree path, 100 no such file, 112 a key type twice in
--decryption-order, 128 no key opens the data key, 200 edit changed nothing, 201 the
editor failed, 203 already encrypted; exec-env and exec-file end with the command's.";

#[derive(Parser, Debug)]
#[command(
    name = "sops",
    about = ABOUT,
    disable_version_flag = true,
    args_conflicts_with_subcommands = true,
    after_help = EXAMPLES
)]
pub struct SopsCli {
    #[command(subcommand)]
    pub command: Option<SopsCommand>,
    #[command(flatten)]
    pub main: MainArgs,
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// Flags sops takes anywhere on its command line.
#[derive(Args, Debug, Default)]
pub struct GlobalArgs {
    /// Print the version (coffer's, and the sops interface it speaks)
    #[arg(short = 'v', long, global = true)]
    pub version: bool,
    /// Path to the .sops.yaml config (default: the nearest one above the current directory)
    #[arg(long, env = "SOPS_CONFIG", global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Accepted for sops's scripts; coffer never checks for updates
    #[arg(long, env = "SOPS_DISABLE_VERSION_CHECK", global = true, num_args = 0..=1, default_missing_value = "true", hide = true)]
    pub disable_version_check: Option<String>,
    /// Accepted for sops's scripts; coffer never checks for updates
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true", hide = true)]
    pub check_for_updates: Option<String>,
    /// Accepted for sops's scripts; coffer says what it does on errors only
    #[arg(long, global = true)]
    pub verbose: bool,
    /// Accepted: keys are always used in this process
    #[arg(long, env = "SOPS_ENABLE_LOCAL_KEYSERVICE", global = true, num_args = 0..=1, default_missing_value = "true", hide = true)]
    pub enable_local_keyservice: Option<String>,
    /// Remote key services are not supported
    #[arg(
        long,
        env = "SOPS_KEYSERVICE",
        global = true,
        value_name = "URI",
        hide = true
    )]
    pub keyservice: Vec<String>,
    /// Accepted for sops's scripts: coffer tries age, then KMS, then PGP
    #[arg(
        long,
        env = "SOPS_DECRYPTION_ORDER",
        global = true,
        value_name = "TYPES",
        hide = true
    )]
    pub decryption_order: Option<String>,
}

/// A file type as sops takes it: one it does not know is ignored, and the type then
/// comes from the file name (sops's `FormatForPathOrString`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SopsType(pub Option<coffer::format::Format>);

fn sops_type(s: &str) -> Result<SopsType, std::convert::Infallible> {
    use coffer::format::Format;
    Ok(SopsType(match s {
        "yaml" => Some(Format::Yaml),
        "json" => Some(Format::Json),
        "dotenv" => Some(Format::Dotenv),
        "ini" => Some(Format::Ini),
        "binary" => Some(Format::Binary),
        _ => None,
    }))
}

/// Where the input comes from and the output goes.
#[derive(Args, Debug, Default, Clone)]
pub struct IoFlags {
    /// Write the output back to the same file instead of stdout
    #[arg(short = 'i', long)]
    pub in_place: bool,
    /// Save the output to this file
    #[arg(long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// ini, json, yaml, dotenv or binary (default, and for other words: from the file name)
    #[arg(long, value_parser = sops_type, value_name = "TYPE")]
    pub input_type: Option<SopsType>,
    /// ini, json, yaml, dotenv or binary (default, and for other words: from the file name, not --input-type)
    #[arg(long, value_parser = sops_type, value_name = "TYPE")]
    pub output_type: Option<SopsType>,
    /// Use this file name for the config lookup and the file types (needed with stdin)
    #[arg(long, value_name = "NAME")]
    pub filename_override: Option<PathBuf>,
}

/// Master keys for a new file (or a new key group).
#[derive(Args, Debug, Default, Clone)]
pub struct KeyFlags {
    /// Comma-separated KMS ARNs (ARN+ROLE_ARN assumes the role)
    #[arg(short = 'k', long, env = "SOPS_KMS_ARN", value_name = "ARNS")]
    pub kms: Option<String>,
    /// Comma-separated PGP fingerprints
    #[arg(short = 'p', long, env = "SOPS_PGP_FP", value_name = "FPS")]
    pub pgp: Option<String>,
    /// Comma-separated age recipients
    #[arg(
        short = 'a',
        long,
        env = "SOPS_AGE_RECIPIENTS",
        value_name = "RECIPIENTS"
    )]
    pub age: Option<String>,
    /// The AWS profile for requests to AWS
    #[arg(long, value_name = "NAME")]
    pub aws_profile: Option<String>,
    /// Comma-separated KMS encryption context key:value pairs
    #[arg(long, value_name = "K:V,…")]
    pub encryption_context: Option<String>,
    /// How many key groups open the data key
    #[arg(long, value_name = "N")]
    pub shamir_secret_sharing_threshold: Option<usize>,
    #[command(flatten)]
    pub unsupported: OtherKeyFlags,
}

/// Key kinds coffer cannot use: given, they fail with one line.
#[derive(Args, Debug, Default, Clone)]
pub struct OtherKeyFlags {
    #[arg(long, env = "SOPS_GCP_KMS_IDS", hide = true)]
    pub gcp_kms: Option<String>,
    #[arg(long, env = "SOPS_AZURE_KEYVAULT_URLS", hide = true)]
    pub azure_kv: Option<String>,
    #[arg(long, env = "SOPS_VAULT_URIS", hide = true)]
    pub hc_vault_transit: Option<String>,
    #[arg(long, env = "SOPS_HUAWEICLOUD_KMS_IDS", hide = true)]
    pub hckms: Option<String>,
}

/// Which values are encrypted.
#[derive(Args, Debug, Default, Clone)]
pub struct SelectorFlags {
    /// Leave values readable whose key ends with this
    #[arg(long, value_name = "SUFFIX")]
    pub unencrypted_suffix: Option<String>,
    /// Encrypt only values whose key ends with this
    #[arg(long, value_name = "SUFFIX")]
    pub encrypted_suffix: Option<String>,
    /// Leave values readable whose key matches this
    #[arg(long, value_name = "REGEX")]
    pub unencrypted_regex: Option<String>,
    /// Encrypt only values whose key matches this
    #[arg(long, value_name = "REGEX")]
    pub encrypted_regex: Option<String>,
    /// Leave comments readable that match this
    #[arg(long, value_name = "REGEX")]
    pub unencrypted_comment_regex: Option<String>,
    /// Encrypt only comments that match this
    #[arg(long, value_name = "REGEX")]
    pub encrypted_comment_regex: Option<String>,
    /// The MAC covers encrypted values only
    #[arg(long)]
    pub mac_only_encrypted: bool,
}

/// Master keys to add to or remove from a file (with rotate).
#[derive(Args, Debug, Default, Clone)]
pub struct KeyChangeFlags {
    /// Add these comma-separated KMS ARNs
    #[arg(long, value_name = "ARNS")]
    pub add_kms: Option<String>,
    /// Remove these comma-separated KMS ARNs
    #[arg(long, value_name = "ARNS")]
    pub rm_kms: Option<String>,
    /// Add these comma-separated age recipients
    #[arg(long, value_name = "RECIPIENTS")]
    pub add_age: Option<String>,
    /// Remove these comma-separated age recipients
    #[arg(long, value_name = "RECIPIENTS")]
    pub rm_age: Option<String>,
    /// Add these comma-separated PGP fingerprints
    #[arg(long, value_name = "FPS")]
    pub add_pgp: Option<String>,
    /// Remove these comma-separated PGP fingerprints
    #[arg(long, value_name = "FPS")]
    pub rm_pgp: Option<String>,
    #[arg(long, hide = true)]
    pub add_gcp_kms: Option<String>,
    #[arg(long, hide = true)]
    pub rm_gcp_kms: Option<String>,
    #[arg(long, hide = true)]
    pub add_azure_kv: Option<String>,
    #[arg(long, hide = true)]
    pub rm_azure_kv: Option<String>,
    #[arg(long, hide = true)]
    pub add_hc_vault_transit: Option<String>,
    #[arg(long, hide = true)]
    pub rm_hc_vault_transit: Option<String>,
    #[arg(long, hide = true)]
    pub add_hckms: Option<String>,
    #[arg(long, hide = true)]
    pub rm_hckms: Option<String>,
}

/// The main command: a mode flag and a file (edit without one).
#[derive(Args, Debug, Default)]
pub struct MainArgs {
    /// Decrypt the file to stdout (or --output, or in place)
    #[arg(short = 'd', long)]
    pub decrypt: bool,
    /// Encrypt the file to stdout (or --output, or in place)
    #[arg(short = 'e', long)]
    pub encrypt: bool,
    /// Generate a new data key and encrypt every value with it
    #[arg(short = 'r', long)]
    pub rotate: bool,
    /// Set one value: '["key"]["sub"] JSON_VALUE'
    #[arg(long, value_name = "PATH VALUE")]
    pub set: Option<String>,
    /// With -d: print only this key or branch, e.g. '["db"]["password"]'
    #[arg(long, value_name = "PATH")]
    pub extract: Option<String>,
    /// Decrypt even if the MAC does not match
    #[arg(long)]
    pub ignore_mac: bool,
    /// Show the master keys in the editor (not supported)
    #[arg(short = 's', long, hide = true)]
    pub show_master_keys: bool,
    /// Indentation of the output (coffer keeps each file's own layout)
    #[arg(long, value_name = "N")]
    pub indent: Option<usize>,
    #[command(flatten)]
    pub io: IoFlags,
    #[command(flatten)]
    pub keys: KeyFlags,
    #[command(flatten)]
    pub selector: SelectorFlags,
    #[command(flatten)]
    pub change: KeyChangeFlags,
    /// The file (sops reads no stdin here: name /dev/stdin for that)
    pub file: Option<PathBuf>,
    /// sops warns about arguments after the file and ignores them
    #[arg(hide = true)]
    pub rest: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum SopsCommand {
    /// Encrypt a file, and output the result to stdout (stdin without a file)
    Encrypt(EncryptArgs),
    /// Decrypt a file, and output the result to stdout (stdin without a file)
    Decrypt(DecryptArgs),
    /// Edit an encrypted file in $SOPS_EDITOR or $EDITOR
    Edit(EditArgs),
    /// Generate a new data key and encrypt every value with it
    Rotate(RotateArgs),
    /// Set one value of an encrypted file
    Set(SetArgs),
    /// Remove one key or list element of an encrypted file
    Unset(UnsetArgs),
    /// Run a command (through /bin/sh -c) with the file's top-level values in its environment
    #[command(name = "exec-env")]
    ExecEnv(ExecEnvArgs),
    /// Run a command (through /bin/sh -c) with the plaintext as a temporary file ({} in the command)
    #[command(name = "exec-file")]
    ExecFile(ExecFileArgs),
    /// Tell whether a file is encrypted, as JSON
    Filestatus(FilestatusArgs),
    /// Update the master keys of files to what .sops.yaml says now
    Updatekeys(UpdatekeysArgs),
    /// Add or delete a key group of a file
    #[command(subcommand)]
    Groups(GroupsCommand),
    /// Print a shell completion script
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Publish an encrypted file, or a directory of them, to the S3 destination the
    /// config's destination_rules give it
    Publish(PublishArgs),
    /// Not supported by coffer
    #[command(hide = true)]
    Keyservice {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        rest: Vec<String>,
    },
}

#[derive(Args, Debug)]
pub struct PublishArgs {
    /// Pre-approve all changes and run non-interactively
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Omit file extensions in the destination path
    #[arg(long)]
    pub omit_extensions: bool,
    /// If the path is a directory, publish all its content recursively
    #[arg(long)]
    pub recursive: bool,
    pub file: Option<PathBuf>,
    #[arg(hide = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

#[derive(Args, Debug)]
pub struct EncryptArgs {
    #[command(flatten)]
    pub io: IoFlags,
    #[command(flatten)]
    pub keys: KeyFlags,
    #[command(flatten)]
    pub selector: SelectorFlags,
    /// Indentation of the output (coffer keeps each file's own layout)
    #[arg(long, value_name = "N")]
    pub indent: Option<usize>,
    /// The file (default: stdin)
    pub file: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct DecryptArgs {
    #[command(flatten)]
    pub io: IoFlags,
    /// Print only this key or branch, e.g. '["db"]["password"]'
    #[arg(long, value_name = "PATH")]
    pub extract: Option<String>,
    /// Decrypt even if the MAC does not match
    #[arg(long)]
    pub ignore_mac: bool,
    /// Indentation of the output (coffer keeps each file's own layout)
    #[arg(long, value_name = "N")]
    pub indent: Option<usize>,
    /// The file (default: stdin)
    pub file: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct EditArgs {
    #[command(flatten)]
    pub keys: KeyFlags,
    #[command(flatten)]
    pub selector: SelectorFlags,
    /// ini, json, yaml, dotenv or binary (default, and for other words: from the file name)
    #[arg(long, value_parser = sops_type, value_name = "TYPE")]
    pub input_type: Option<SopsType>,
    /// ini, json, yaml, dotenv or binary (default, and for other words: from the file name, not --input-type)
    #[arg(long, value_parser = sops_type, value_name = "TYPE")]
    pub output_type: Option<SopsType>,
    /// Show the master keys in the editor (not supported)
    #[arg(short = 's', long, hide = true)]
    pub show_master_keys: bool,
    /// Open even if the MAC does not match
    #[arg(long)]
    pub ignore_mac: bool,
    /// Indentation of the output (coffer keeps each file's own layout)
    #[arg(long, value_name = "N")]
    pub indent: Option<usize>,
    pub file: PathBuf,
}

#[derive(Args, Debug)]
pub struct RotateArgs {
    #[command(flatten)]
    pub io: IoFlags,
    #[command(flatten)]
    pub change: KeyChangeFlags,
    /// Comma-separated KMS encryption context key:value pairs for added KMS keys
    #[arg(long, value_name = "K:V,…")]
    pub encryption_context: Option<String>,
    /// Indentation of the output (coffer keeps each file's own layout)
    #[arg(long, value_name = "N")]
    pub indent: Option<usize>,
    pub file: PathBuf,
}

/// No `Debug` derive worth showing: it holds a value.
#[derive(Args)]
pub struct SetArgs {
    /// ini, json, yaml, dotenv or binary (default, and for other words: from the file name)
    #[arg(long, value_parser = sops_type, value_name = "TYPE")]
    pub input_type: Option<SopsType>,
    /// ini, json, yaml, dotenv or binary (default, and for other words: from the file name, not --input-type)
    #[arg(long, value_parser = sops_type, value_name = "TYPE")]
    pub output_type: Option<SopsType>,
    /// The value is the contents of the file named by VALUE
    #[arg(long)]
    pub value_file: bool,
    /// The value is read from stdin
    #[arg(long, conflicts_with = "value_file")]
    pub value_stdin: bool,
    /// Leave the file untouched when the value is already set
    #[arg(long)]
    pub idempotent: bool,
    /// Open even if the MAC does not match
    #[arg(long)]
    pub ignore_mac: bool,
    #[arg(long, value_name = "N", hide = true)]
    pub shamir_secret_sharing_threshold: Option<usize>,
    /// Indentation of the output (coffer keeps each file's own layout)
    #[arg(long, value_name = "N")]
    pub indent: Option<usize>,
    pub file: PathBuf,
    /// e.g. '["db"]["password"]'
    pub path: String,
    /// A JSON value (a string is '"text"'); a file name with --value-file
    pub value: Option<String>,
}

impl std::fmt::Debug for SetArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetArgs").field("file", &self.file).finish()
    }
}

#[derive(Args, Debug)]
pub struct UnsetArgs {
    /// ini, json, yaml, dotenv or binary (default, and for other words: from the file name)
    #[arg(long, value_parser = sops_type, value_name = "TYPE")]
    pub input_type: Option<SopsType>,
    /// ini, json, yaml, dotenv or binary (default, and for other words: from the file name, not --input-type)
    #[arg(long, value_parser = sops_type, value_name = "TYPE")]
    pub output_type: Option<SopsType>,
    /// Succeed, changing nothing, when the key is not there
    #[arg(long)]
    pub idempotent: bool,
    /// Open even if the MAC does not match
    #[arg(long)]
    pub ignore_mac: bool,
    #[arg(long, value_name = "N", hide = true)]
    pub shamir_secret_sharing_threshold: Option<usize>,
    /// Indentation of the output (coffer keeps each file's own layout)
    #[arg(long, value_name = "N")]
    pub indent: Option<usize>,
    pub file: PathBuf,
    /// e.g. '["hosts"][1]'
    pub path: String,
}

#[derive(Args, Debug)]
pub struct ExecEnvArgs {
    /// Only the file's values, not this process's environment
    #[arg(long)]
    pub pristine: bool,
    /// Replace this process with the command instead of running a child
    #[arg(long)]
    pub same_process: bool,
    /// Deprecated in sops; not supported
    #[arg(long, hide = true)]
    pub background: bool,
    /// Run the command as this user (not supported)
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// ini, json, yaml, dotenv or binary (default, and for other words: from the file name)
    #[arg(long, value_parser = sops_type, value_name = "TYPE")]
    pub input_type: Option<SopsType>,
    /// Open even if the MAC does not match
    #[arg(long)]
    pub ignore_mac: bool,
    pub file: PathBuf,
    /// One shell command
    pub command: String,
}

#[derive(Args, Debug)]
pub struct ExecFileArgs {
    /// Write a private regular file instead of a FIFO
    #[arg(long)]
    pub no_fifo: bool,
    /// The temporary file's name (default: tmp-file)
    #[arg(long, value_name = "NAME")]
    pub filename: Option<String>,
    /// Deprecated in sops; not supported
    #[arg(long, hide = true)]
    pub background: bool,
    /// Run the command as this user (not supported)
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// ini, json, yaml, dotenv or binary (default, and for other words: from the file name)
    #[arg(long, value_parser = sops_type, value_name = "TYPE")]
    pub input_type: Option<SopsType>,
    /// ini, json, yaml, dotenv or binary (default, and for other words: from the file name, not --input-type)
    #[arg(long, value_parser = sops_type, value_name = "TYPE")]
    pub output_type: Option<SopsType>,
    /// Open even if the MAC does not match
    #[arg(long)]
    pub ignore_mac: bool,
    pub file: PathBuf,
    /// One shell command; {} stands for the temporary file's path
    pub command: String,
}

#[derive(Args, Debug)]
pub struct FilestatusArgs {
    /// ini, json, yaml, dotenv or binary (default, and for other words: from the file name)
    #[arg(long, value_parser = sops_type, value_name = "TYPE")]
    pub input_type: Option<SopsType>,
    pub file: PathBuf,
}

#[derive(Args, Debug)]
pub struct UpdatekeysArgs {
    /// Apply without asking
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// ini, json, yaml, dotenv or binary (default, and for other words: from the file name)
    #[arg(long, value_parser = sops_type, value_name = "TYPE")]
    pub input_type: Option<SopsType>,
    #[arg(long, value_name = "N", hide = true)]
    pub shamir_secret_sharing_threshold: Option<usize>,
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum GroupsCommand {
    /// Add a key group to a file (its data key is split anew)
    Add(Box<GroupsAddArgs>),
    /// Delete the key group at INDEX of a file (its data key is split anew)
    Delete(GroupsDeleteArgs),
}

#[derive(Args, Debug)]
pub struct GroupsAddArgs {
    /// The file to add the group to
    #[arg(short = 'f', long, value_name = "FILE")]
    pub file: PathBuf,
    /// Write the result over the file instead of to stdout
    #[arg(short = 'i', long)]
    pub in_place: bool,
    /// PGP fingerprints of the new group (repeat)
    #[arg(long, value_name = "FP")]
    pub pgp: Vec<String>,
    /// KMS ARNs of the new group (repeat)
    #[arg(long, value_name = "ARN")]
    pub kms: Vec<String>,
    /// age recipients of the new group (repeat)
    #[arg(long, value_name = "RECIPIENT")]
    pub age: Vec<String>,
    /// The AWS profile for requests to AWS
    #[arg(long, value_name = "NAME")]
    pub aws_profile: Option<String>,
    /// Comma-separated KMS encryption context key:value pairs
    #[arg(long, value_name = "K:V,…")]
    pub encryption_context: Option<String>,
    /// How many key groups open the data key
    #[arg(long, value_name = "N")]
    pub shamir_secret_sharing_threshold: Option<usize>,
    #[arg(long, hide = true)]
    pub gcp_kms: Vec<String>,
    #[arg(long, hide = true)]
    pub azure_kv: Vec<String>,
    #[arg(long, hide = true)]
    pub hc_vault_transit: Vec<String>,
    #[arg(long, hide = true)]
    pub hckms: Vec<String>,
}

#[derive(Args, Debug)]
pub struct GroupsDeleteArgs {
    /// The file to delete the group from
    #[arg(short = 'f', long, value_name = "FILE")]
    pub file: PathBuf,
    /// Write the result over the file instead of to stdout
    #[arg(short = 'i', long)]
    pub in_place: bool,
    /// How many key groups open the data key
    #[arg(long, value_name = "N")]
    pub shamir_secret_sharing_threshold: Option<usize>,
    /// The group's index, from 0
    pub index: usize,
}
