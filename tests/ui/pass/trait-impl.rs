use tracked::tracked;

trait Service {
    async fn serve(&self, request: u32) -> u32;
    fn name(&self) -> &'static str;
}

struct Echo;

impl Service for Echo {
    #[tracked(type = "Network")]
    async fn serve(&self, request: u32) -> u32 {
        request
    }

    fn name(&self) -> &'static str {
        "echo"
    }
}

trait Defaulted {
    #[tracked]
    async fn run(&self) -> bool {
        true
    }
}

impl Defaulted for Echo {}

fn main() {
    let _ = Echo.serve(1);
    let _ = Echo.run();
}
