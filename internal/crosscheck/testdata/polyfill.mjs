// aws-local-stepfunctions 3.0.0 calls Promise.withResolvers (Node 22+); Node 20 lacks it. Loaded with
// `node --import ./polyfill.mjs` before the library. Does nothing where the runtime has it.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers() {
    let resolve;
    let reject;
    const promise = new this((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}
