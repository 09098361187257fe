// kept for src/tunnel until its rewrite lands
export * from "../io/relay.ts";
