// kept for src/tunnel until its rewrite lands
export * from "../io/conn.ts";
export * from "../io/dialer.ts";
