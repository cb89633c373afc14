// `noop`: does nothing, for the cost of runTask itself.
export default defineTask({
  meta: { description: "Does nothing" },
  run() {
    return { result: null };
  },
});
