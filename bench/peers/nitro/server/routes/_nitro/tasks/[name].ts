// Nitro serves /_nitro/tasks only in development; a production build gets the same
// endpoint as an API route calling runTask, with the dev endpoint's payload rule (the query,
// then the body's `payload`).
export default defineEventHandler(async (event) => {
  const name = getRouterParam(event, "name");
  const body = event.method === "POST" ? await readBody(event).catch(() => ({})) : {};
  const payload = { ...getQuery(event), ...(body?.payload ?? {}) };
  return await runTask(name, { payload });
});
