// `echo:payload`: returns its payload, as in Nitro's docs and taskyard's quickstart.
export default defineTask({
  meta: { description: "Returns the provided payload" },
  run({ payload }) {
    return { result: payload };
  },
});
