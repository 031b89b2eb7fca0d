//! `tandem`: the daemon (`tandem run`) and the operator's CLI in one binary.
//!
//! Role: parse the command line, load the config, and either run the daemon or talk to a
//! running one over its control socket. Must never hold protocol logic of its own.

mod fence_cli;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tandem_daemon::control::{self, Request};

const DEFAULT_CONFIG: &str = "/etc/tandem/tandem.toml";
const DEFAULT_SOCKET: &str = "/run/tandem/tandem.sock";

#[derive(Parser)]
#[command(
    name = "tandem",
    version,
    about = "High-availability cluster manager: VRRP virtual IPs, keepalived-compatible"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the daemon in the foreground (logs to stderr; SIGTERM/SIGINT hand over and exit).
    Run {
        /// Config file.
        #[arg(short, long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Quorum mode, a new member of a running cluster: with an empty Raft store, wait to
        /// be added with `tandem node add` on a member instead of bootstrapping a cluster from
        /// [cluster] nodes. Ignored once the store holds a log.
        #[arg(long)]
        join: bool,
    },
    /// Validate a config file: every error as file:line:col, exit 1 if any. Also checks this
    /// machine's side (cluster key permissions, serial devices) unless --no-local.
    Check {
        #[arg(short, long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Only the file itself: for checking another machine's config.
        #[arg(long)]
        no_local: bool,
    },
    /// Show every instance's state, priority, master, VIPs and counters.
    Status {
        #[command(flatten)]
        target: Target,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Show every heartbeat channel to every peer: state, last seen, RTT, loss, drops.
    Links {
        #[command(flatten)]
        target: Target,
        /// Machine-readable output (the heartbeat snapshot).
        #[arg(long)]
        json: bool,
    },
    /// Print the daemon's recent events (transitions, checks, links, priorities) as JSON
    /// lines; with --follow, keep printing new ones.
    Events {
        #[command(flatten)]
        target: Target,
        #[arg(short, long)]
        follow: bool,
    },
    /// Quorum mode: put a voter on standby. It keeps voting but holds no group: each group it
    /// holds is handed over (priority 0 advert, VIPs removed, lease released) to the best
    /// other node.
    Standby {
        /// The voter (a name from [cluster] nodes).
        node: String,
        #[command(flatten)]
        target: Target,
    },
    /// Quorum mode: take a voter off standby; with preempt it takes back the groups it has the
    /// highest priority for.
    Unstandby {
        node: String,
        #[command(flatten)]
        target: Target,
    },
    /// Quorum mode: hand GROUP over to NODE gracefully, and keep preferring NODE while it is
    /// eligible; `--clear` drops the preference (priorities and preempt decide again).
    Move {
        /// A quorum-mode [[vrrp_instance]] name.
        group: String,
        /// The voter to move it to.
        #[arg(required_unless_present = "clear", conflicts_with = "clear")]
        node: Option<String>,
        #[arg(long)]
        clear: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Quorum mode: change the cluster's members through a Raft membership change.
    #[command(subcommand)]
    Node(NodeCmd),
    /// Print a stopped node's Raft store as JSON: the committed log id, every log entry and
    /// the applied state (for post-mortems and the durability tests). The daemon holds the
    /// store's lock while it runs: stop it first.
    RaftLog {
        /// The node's [node] state_dir.
        #[arg(long)]
        state_dir: PathBuf,
    },
    /// Fence (STONITH) a node from this machine through its [[fence_level]]s, or check every
    /// [[fence_device]] with `tandem fence check`.
    ///
    /// `tandem fence NODE` tries NODE's levels in order (level 1 first); a level counts only
    /// when every one of its devices was read back in the wanted state. Each level, device and
    /// attempt is printed with its outcome; the exit status is 0 only on a verified success.
    /// It asks for confirmation on a terminal unless --yes, and refuses without --yes when
    /// stdin is not a terminal. It acts directly on the devices, with this machine's copy of
    /// the config and secrets: recording the fence in the cluster's history (and `tandem
    /// fence history`) comes with the daemon's quorum work, not yet in this build.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Fence {
        #[command(subcommand)]
        sub: Option<FenceCmd>,
        /// The node to fence (a node named in [[fence_level]]).
        #[arg(required = true)]
        node: Option<String>,
        /// What to do: off (the default: the node stays down), on (unfence), or reboot (off,
        /// verified, then on).
        #[arg(long, value_enum, default_value_t = ActionArg::Off)]
        action: ActionArg,
        /// Do not ask for confirmation (needed when stdin is not a terminal).
        #[arg(long)]
        yes: bool,
        #[arg(short, long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum FenceCmd {
    /// Query every [[fence_device]]'s state without acting, as a table; exit 1 if any device
    /// cannot be read.
    Check {
        #[arg(short, long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Every recorded fence, oldest first: in quorum mode the cluster's history from the Raft
    /// log (the coordinator's fences and operators' `tandem fence NODE`), in vrrp mode this
    /// node's own.
    History {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ActionArg {
    Off,
    On,
    Reboot,
}

impl From<ActionArg> for tandem_fence::FenceAction {
    fn from(a: ActionArg) -> Self {
        match a {
            ActionArg::Off => tandem_fence::FenceAction::Off,
            ActionArg::On => tandem_fence::FenceAction::On,
            ActionArg::Reboot => tandem_fence::FenceAction::Reboot,
        }
    }
}

#[derive(clap::Args)]
struct Target {
    /// Control socket of the daemon (default: the one named in the config, else
    /// /run/tandem/tandem.sock).
    #[arg(short, long)]
    socket: Option<PathBuf>,
    /// Config file naming the control socket.
    #[arg(short, long)]
    config: Option<PathBuf>,
}

impl Target {
    fn socket(&self) -> Result<PathBuf, String> {
        if let Some(s) = &self.socket {
            return Ok(s.clone());
        }
        let cfg = self.config.clone().or_else(|| {
            Path::new(DEFAULT_CONFIG)
                .exists()
                .then(|| DEFAULT_CONFIG.into())
        });
        match cfg {
            Some(path) => match tandem_config::load(&path) {
                Ok(c) => Ok(c.node.control_socket),
                Err(d) => Err(format!("{d}")),
            },
            None => Ok(DEFAULT_SOCKET.into()),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Check { config, no_local } => match tandem_config::load(&config).and_then(|c| {
            if no_local {
                Ok(c)
            } else {
                tandem_config::check_local(&c).map(|()| c)
            }
        }) {
            Ok(c) => {
                println!(
                    "{}: ok (node {}, {} vrrp instance{})",
                    config.display(),
                    c.node.name,
                    c.vrrp_instances.len(),
                    if c.vrrp_instances.len() == 1 { "" } else { "s" }
                );
                ExitCode::SUCCESS
            }
            Err(d) => {
                eprint!("{d}");
                ExitCode::from(1)
            }
        },
        Cmd::Links { target, json } => match fetch_status(&target) {
            Ok(st) => {
                if json {
                    let v = st.membership.unwrap_or(serde_json::Value::Null);
                    emit(&(serde_json::to_string_pretty(&v).expect("serializes") + "\n"));
                } else {
                    emit(&st.render_links());
                }
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Cmd::Standby { node, target } => send_op(
            &target,
            &Request::Standby {
                node: node.clone(),
                standby: true,
            },
            &format!("{node} is on standby"),
        ),
        Cmd::Unstandby { node, target } => send_op(
            &target,
            &Request::Standby {
                node: node.clone(),
                standby: false,
            },
            &format!("{node} is no longer on standby"),
        ),
        Cmd::Move {
            group,
            node,
            clear: _,
            target,
        } => {
            let done = match &node {
                Some(n) => format!(
                    "{group}: moving to {n} (preferred until `tandem move {group} --clear`)"
                ),
                None => format!("{group}: preference cleared"),
            };
            send_op(&target, &Request::Move { group, node }, &done)
        }
        Cmd::Node(NodeCmd::Add {
            name,
            address,
            arbiter,
            target,
        }) => {
            let role = if arbiter {
                tandem_quorum::MemberRole::Arbiter
            } else {
                tandem_quorum::MemberRole::Voter
            };
            let done = format!("{name} is a member (voter)");
            let req = Request::NodeAdd {
                name,
                address,
                role,
            };
            send_op(&target, &req, &done)
        }
        Cmd::Node(NodeCmd::Remove { name, target }) => {
            let done = format!("{name} is no longer a member; stop tandem on it");
            send_op(&target, &Request::NodeRemove { name }, &done)
        }
        Cmd::RaftLog { state_dir } => match tandem_quorum::store::inspect(&state_dir) {
            Ok(found) => {
                emit(&(serde_json::to_string(&found).expect("serializes") + "\n"));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("tandem: {e} (is the daemon still running? it holds the store's lock)");
                ExitCode::from(1)
            }
        },
        Cmd::Status { target, json } => match fetch_status(&target) {
            Ok(st) => {
                if json {
                    emit(&(serde_json::to_string_pretty(&st).expect("serializes") + "\n"));
                } else {
                    emit(&st.render());
                }
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Cmd::Events { target, follow } => {
            let socket = match target.socket() {
                Ok(s) => s,
                Err(e) => {
                    eprint!("{e}");
                    return ExitCode::from(1);
                }
            };
            let reader = match control::events(&socket, follow) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("tandem: {e}");
                    return ExitCode::from(1);
                }
            };
            use std::io::{BufRead, Write};
            let stdout = std::io::stdout();
            for line in reader.lines() {
                let Ok(line) = line else { break };
                let mut out = stdout.lock();
                if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
                    break;
                }
            }
            ExitCode::SUCCESS
        }
        Cmd::Fence {
            sub: Some(FenceCmd::Check { config }),
            ..
        } => fence_cli::check(&config),
        Cmd::Fence {
            sub: Some(FenceCmd::History { target, json }),
            ..
        } => match fetch_status(&target) {
            Ok(st) => {
                let history = fence_cli::history_of(&st);
                if json {
                    emit(&(serde_json::to_string_pretty(&history).expect("serializes") + "\n"));
                } else {
                    emit(&fence_cli::render_history(&history));
                }
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Cmd::Fence {
            sub: None,
            node,
            action,
            yes,
            config,
        } => fence_cli::fence(
            &config,
            node.as_deref().unwrap_or_default(),
            action.into(),
            yes,
        ),
        Cmd::Run { config, join } => {
            init_logging();
            let cfg = match tandem_config::load(&config) {
                Ok(c) => c,
                Err(d) => {
                    eprint!("{d}");
                    eprintln!("tandem: refusing to start with an invalid config");
                    return ExitCode::from(1);
                }
            };
            if let Err(d) = tandem_config::check_local(&cfg) {
                eprint!("{d}");
                eprintln!("tandem: refusing to start: this machine does not match the config");
                return ExitCode::from(1);
            }
            match tandem_daemon::run(cfg, tandem_daemon::RunOptions { join }) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("fatal: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

/// Ask the daemon for its status; on failure the message is printed and the exit code
/// returned.
fn fetch_status(target: &Target) -> Result<tandem_daemon::status::StatusReport, ExitCode> {
    let socket = target.socket().map_err(|e| {
        eprint!("{e}");
        ExitCode::from(1)
    })?;
    let resp = control::request(&socket, &Request::Status).map_err(|e| {
        eprintln!("tandem: {e}");
        ExitCode::from(1)
    })?;
    resp.status.ok_or_else(|| {
        eprintln!("tandem: the daemon answered without a status");
        ExitCode::from(1)
    })
}

#[derive(Subcommand)]
enum NodeCmd {
    /// Add a member. Start tandem on it first with `tandem run --join` (its config lists the
    /// cluster's nodes and itself); it is added as a learner, copies the log, and becomes a
    /// voter once it has caught up (up to 20 s).
    Add {
        /// Its node name ([node] name in its config).
        name: String,
        /// Its Raft address: an IP (the cluster's raft_port is used) or IP:port.
        address: String,
        /// An arbiter: votes, never holds a VIP.
        #[arg(long)]
        arbiter: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Remove a member. It must hold no lease (`tandem standby NODE` first), and at least
    /// three voters must remain. Stop tandem on it afterwards.
    Remove {
        name: String,
        #[command(flatten)]
        target: Target,
    },
}

/// Send an operator request that goes through the Raft log; print `done` once committed.
fn send_op(target: &Target, req: &Request, done: &str) -> ExitCode {
    let socket = match target.socket() {
        Ok(s) => s,
        Err(e) => {
            eprint!("{e}");
            return ExitCode::from(1);
        }
    };
    match control::request(&socket, req) {
        Ok(resp) if resp.ok => {
            match resp.committed {
                Some((index, term)) => println!("{done} (raft log index {index}, term {term})"),
                None => println!("{done}"),
            }
            ExitCode::SUCCESS
        }
        Ok(resp) => {
            eprintln!(
                "tandem: {}",
                resp.error
                    .as_deref()
                    .unwrap_or("the daemon refused the request")
            );
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("tandem: {e}");
            ExitCode::from(1)
        }
    }
}

/// Write to stdout; a reader that went away (`tandem status | head`) is not an error.
fn emit(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("TANDEM_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
