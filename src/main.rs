use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    match invsync::cli::run(invsync::cli::Cli::parse()).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("invsync: {error:#}");
            ExitCode::FAILURE
        }
    }
}
