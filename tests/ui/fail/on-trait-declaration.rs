trait Service {
    #[tracked::tracked]
    async fn serve(&self);
}

fn main() {}
