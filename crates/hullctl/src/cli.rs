//! The command line: global options, one struct per command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  hullctl import busybox-rootfs.tar busybox     # a rootfs tarball as the image `busybox`
  hullctl pull docker.io/library/alpine:3.20
  hullctl run --rm busybox echo hello
  hullctl run -it --rm busybox sh
  hullctl run -d --name web --network host -v /srv/www:/www:ro busybox httpd -f -p 8080 -h /www
  hullctl ps -a
  hullctl logs -f web
  hullctl exec -it web sh
  hullctl stop web && hullctl rm web";

#[derive(Parser, Debug)]
#[command(
    name = "hullctl",
    version,
    about = "Run containers from OCI images with the hull runtime",
    after_help = EXAMPLES
)]
pub struct Cli {
    /// Image and container store.
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        default_value = "/var/lib/hull"
    )]
    pub root: PathBuf,
    /// Runtime state (container processes, cgroups); kept in memory by default.
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        default_value = "/run/hullctl"
    )]
    pub runroot: PathBuf,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Pull an image from a registry.
    #[command(after_help = "Example:\n  hullctl pull docker.io/library/busybox:latest")]
    Pull {
        reference: String,
        /// os/arch[/variant] to pick from a multi-platform image.
        #[arg(long)]
        platform: Option<String>,
        #[arg(short, long)]
        quiet: bool,
        /// `false`: plain HTTP or unverified TLS (a local registry).
        #[arg(long, value_name = "BOOL")]
        tls_verify: Option<bool>,
    },
    /// List images.
    #[command(visible_alias = "ls")]
    Images {
        /// Only print image ids.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Remove images (or one of their names).
    #[command(after_help = "Example:\n  hullctl rmi busybox")]
    Rmi {
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Give an image another name.
    #[command(after_help = "Example:\n  hullctl tag busybox localhost/mybox:1")]
    Tag { image: String, name: String },
    /// Import an OCI layout (directory or tar), a docker-archive or a rootfs tarball.
    #[command(after_help = "Examples:\n  hullctl import ./oci-dir\n  \
                            hullctl import image.tar\n  hullctl import rootfs.tar mybox:1")]
    Import {
        path: PathBuf,
        /// The image's name (required for a rootfs tarball).
        name: Option<String>,
    },
    /// Write an image as an OCI archive (a tar of an OCI layout).
    #[command(after_help = "Example:\n  hullctl save -o busybox.tar busybox")]
    Save {
        image: String,
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
    },
    /// Print an image's or a container's details as JSON.
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
        /// Only look for this kind of object.
        #[arg(long = "type", value_parser = ["image", "container"])]
        kind: Option<String>,
    },
    /// Show the history of an image.
    History { image: String },
    /// Create and start a container.
    #[command(after_help = "Examples:\n  hullctl run --rm busybox echo hi\n  \
                            hullctl run -it --rm busybox sh\n  \
                            hullctl run -d --name db -e A=1 --memory 64m busybox sleep 1000")]
    Run(RunArgs),
    /// Create a container without starting it.
    #[command(
        after_help = "Example:\n  hullctl create --name job busybox sh -c 'date; exit 3'\n  \
                            hullctl start job && hullctl wait job"
    )]
    Create(ContainerArgs),
    /// Start created or exited containers (in the background).
    Start {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// List containers.
    #[command(after_help = "Examples:\n  hullctl ps -a\n  \
                            hullctl ps -a --format '{{.Names}} {{.State}} {{.ExitCode}}'\n  \
                            hullctl ps --format 'table {{.ID}}\\t{{.Status}}'\n\n\
                            Fields: ID FullID Image Command Created CreatedAt Status State ExitCode Names Pid")]
    Ps {
        /// Also show containers that are not running.
        #[arg(short, long)]
        all: bool,
        /// Only print container ids.
        #[arg(short, long)]
        quiet: bool,
        /// `table` (default), `json`, or a template such as
        /// `{{.ID}} {{.Names}} {{.Status}}`.
        #[arg(long)]
        format: Option<String>,
    },
    /// Print a detached container's output.
    #[command(after_help = "Example:\n  hullctl logs -f --timestamps web")]
    Logs {
        container: String,
        /// Keep printing new output until the container exits.
        #[arg(short, long)]
        follow: bool,
        /// Prefix each line with its time.
        #[arg(short, long)]
        timestamps: bool,
        /// Only the last N lines of what is logged so far.
        #[arg(short = 'n', long, value_name = "N")]
        tail: Option<usize>,
    },
    /// Run a command in a running container.
    #[command(after_help = "Example:\n  hullctl exec -it web sh")]
    Exec(ExecArgs),
    /// Stop containers: the image's stop signal, then SIGKILL after a timeout.
    #[command(after_help = "Example:\n  hullctl stop -t 2 web")]
    Stop {
        /// Seconds to wait before SIGKILL.
        #[arg(short = 't', long = "time", default_value_t = 10)]
        time: u64,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Send a signal to containers.
    Kill {
        #[arg(short, long, default_value = "KILL")]
        signal: String,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove containers.
    #[command(after_help = "Example:\n  hullctl rm -f web")]
    Rm {
        /// Kill a running container first.
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Freeze all processes of containers.
    Pause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Thaw paused containers.
    Unpause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Show containers' resource use.
    Stats {
        containers: Vec<String>,
        /// Print once and exit (the default; kept for compatibility).
        #[arg(long)]
        no_stream: bool,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the processes of a container.
    Top {
        container: String,
        /// ps(1) options (default -ef).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Wait for containers to exit and print their exit codes.
    Wait {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Print version information.
    Version,
    /// Print information about the store and the host.
    Info,
    /// Print a shell completion script.
    #[command(after_help = "Example:\n  hullctl completion bash > /etc/bash_completion.d/hullctl")]
    Completion {
        #[arg(value_parser = ["bash", "zsh", "fish"])]
        shell: String,
    },
    /// Supervise a detached container (started by `start` and `run -d`).
    #[command(hide = true)]
    Monitor { id: String },
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Run in the background and print the container's id.
    #[arg(short, long)]
    pub detach: bool,
    #[command(flatten)]
    pub c: ContainerArgs,
}

#[derive(Args, Debug, Clone, Default)]
pub struct ContainerArgs {
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    #[arg(long)]
    pub name: Option<String>,
    /// Keep stdin open.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// KEY=VALUE (or KEY, to take the value from this environment).
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// A file of KEY=VALUE lines.
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Bind mount: HOST:CONTAINER[:ro|rw].
    #[arg(short, long = "volume", value_name = "HOST:CTR[:ro]")]
    pub volume: Vec<String>,
    /// A tmpfs: PATH[:OPTIONS].
    #[arg(long, value_name = "PATH[:OPTS]")]
    pub tmpfs: Vec<String>,
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// user, uid, user:group or uid:gid.
    #[arg(short, long)]
    pub user: Option<String>,
    /// Replace the image's entrypoint ("" to clear it).
    #[arg(long)]
    pub entrypoint: Option<String>,
    #[arg(long)]
    pub hostname: Option<String>,
    /// Memory limit (bytes, or with a k/m/g suffix).
    #[arg(short, long)]
    pub memory: Option<String>,
    /// CPU quota in CPUs (1.5 = one and a half cores).
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Maximum number of processes (-1: unlimited).
    #[arg(long)]
    pub pids_limit: Option<i64>,
    #[arg(long, value_name = "CAP")]
    pub cap_add: Vec<String>,
    #[arg(long, value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Mount the root filesystem read-only.
    #[arg(long)]
    pub read_only: bool,
    /// All capabilities, no seccomp filter, no masked or read-only paths,
    /// /sys writable, the devices cgroup open (host devices are not added).
    #[arg(long)]
    pub privileged: bool,
    /// seccomp=unconfined|FILE, no-new-privileges.
    #[arg(long, value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// none (a network namespace with only loopback) or host.
    #[arg(long, default_value = "none", value_parser = ["none", "host"])]
    pub network: String,
    /// Pull the image when it is not in the store (`missing`) or not (`never`).
    #[arg(long, default_value = "missing", value_parser = ["missing", "never"])]
    pub pull: String,
    /// Run a minimal init as PID 1 that reaps zombies and forwards signals.
    #[arg(long)]
    pub init: bool,
    pub image: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct ExecArgs {
    /// Keep stdin open.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// Do not wait for the process.
    #[arg(short, long)]
    pub detach: bool,
    /// KEY=VALUE (or KEY, to take the value from this environment).
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// user, uid, user:group or uid:gid (names from the image's /etc/passwd).
    #[arg(short, long)]
    pub user: Option<String>,
    /// The process's working directory.
    #[arg(short, long)]
    pub workdir: Option<String>,
    pub container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}
