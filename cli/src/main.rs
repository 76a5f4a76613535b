//! The `zcopy` command: probe the kernel, copy, send, receive and relay with the zcopy engine,
//! and benchmark every method side by side (`zcopy bench`, what `make demo` runs).
//!
//! Every subcommand is a thin shell over `zcopy-core`: it opens the descriptors, calls
//! `transfer` or `relay`, and prints a one-line summary on stderr (stdout may carry the data).

mod bench;
mod commands;
mod units;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use zcopy_core::Method;

/// Move bytes between files, pipes and sockets with the cheapest kernel path.
#[derive(Parser, Debug)]
#[command(name = "zcopy", version, about, long_about = None)]
struct Cli {
    /// No progress bar and no summary line on stderr (errors are still printed).
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

/// Options shared by the commands that call `transfer`.
#[derive(clap::Args, Debug, Clone)]
pub struct TransferArgs {
    /// Method: auto, read_write, mmap, sendfile, splice, copy_file_range, msg_zerocopy.
    #[arg(short, long, value_parser = parse_method)]
    pub method: Option<Method>,
    /// Let an explicit method fall back to the next one instead of failing.
    #[arg(long)]
    pub fallback: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print which transfer methods this kernel supports.
    Probe,
    /// Copy SRC to DST (paths, `-` for stdin / stdout).
    Copy {
        /// Source path, or `-` for stdin.
        src: PathBuf,
        /// Destination path (created or truncated), or `-` for stdout.
        dst: PathBuf,
        /// Read from this byte offset (the source's position is left unchanged).
        #[arg(long, value_parser = units::parse_size)]
        offset: Option<u64>,
        /// Copy at most this many bytes (default: to the end of the source).
        #[arg(long, value_parser = units::parse_size)]
        count: Option<u64>,
        /// Append to DST instead of truncating it.
        #[arg(long)]
        append: bool,
        #[command(flatten)]
        transfer: TransferArgs,
    },
    /// Send FILE (or `-` for stdin) to a TCP listener at HOST:PORT.
    Send {
        /// The file to send, or `-` for stdin.
        file: PathBuf,
        /// Where to connect, e.g. 127.0.0.1:9000 or example.com:9000.
        addr: String,
        #[command(flatten)]
        transfer: TransferArgs,
    },
    /// Accept one TCP connection on ADDR and write what it sends to FILE (default method: splice).
    Recv {
        /// Address to listen on, e.g. 0.0.0.0:9000 (port 0 picks a free port; the chosen
        /// address is printed on stderr).
        addr: String,
        /// Destination path (created or truncated), or `-` for stdout.
        file: PathBuf,
        #[command(flatten)]
        transfer: TransferArgs,
    },
    /// TCP proxy: accept on LISTEN, connect each client to UPSTREAM, relay both ways.
    Relay {
        /// Address to listen on (port 0 picks a free port; it is printed on stderr).
        listen: String,
        /// Upstream address, HOST:PORT.
        upstream: String,
        /// Stop accepting after this many connections and exit when they have ended.
        #[arg(long)]
        max_conns: Option<u64>,
    },
    /// Measure every applicable method side by side and print a table.
    Bench(bench::BenchArgs),
}

fn parse_method(s: &str) -> Result<Method, String> {
    s.parse::<Method>().map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    commands::guard_standard_streams();
    let cli = Cli::parse();
    let quiet = cli.quiet;
    let result = match cli.command {
        Command::Probe => commands::probe::run(),
        Command::Copy {
            src,
            dst,
            offset,
            count,
            append,
            transfer,
        } => commands::copy::run(&src, &dst, offset, count, append, &transfer, quiet),
        Command::Send {
            file,
            addr,
            transfer,
        } => commands::net::send(&file, &addr, &transfer, quiet),
        Command::Recv {
            addr,
            file,
            transfer,
        } => commands::net::recv(&addr, &file, &transfer, quiet),
        Command::Relay {
            listen,
            upstream,
            max_conns,
        } => commands::relay::run(&listen, &upstream, max_conns, quiet),
        Command::Bench(args) => bench::run(&args, quiet),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zcopy: error: {e}");
            ExitCode::FAILURE
        }
    }
}
