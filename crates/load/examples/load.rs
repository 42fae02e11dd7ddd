//! `cargo run -p manifold-load --example load -- URL [flags]`: the generator without the
//! `manifold` binary, for end-to-end testing of the crate.

use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    load: manifold_load::LoadArgs,
}

fn main() {
    let cli = Cli::parse();
    let code = match manifold_load::run(cli.load) {
        Ok(outcome) => outcome.exit_code(),
        Err(e) => {
            eprintln!("manifold load: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}
