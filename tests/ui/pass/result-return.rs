use tracked::tracked;

#[derive(Debug)]
struct RoundError;

impl std::fmt::Display for RoundError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("round failed")
    }
}

impl From<std::num::ParseIntError> for RoundError {
    fn from(_: std::num::ParseIntError) -> Self {
        RoundError
    }
}

#[tracked(type = "Consensus")]
async fn parse_round(text: &str) -> Result<u32, RoundError> {
    let round: u32 = text.parse()?;
    Ok(round)
}

#[tracked]
async fn io_result() -> std::io::Result<()> {
    Ok(())
}

fn main() {
    let _ = parse_round("1");
    let _ = io_result();
}
