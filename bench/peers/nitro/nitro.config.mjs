// The Nitro app taskyard is measured against: a production node-server build with tasks on.
export default defineNitroConfig({
  srcDir: "server",
  preset: "node-server",
  experimental: { tasks: true },
  compatibilityDate: "2025-01-01",
});
