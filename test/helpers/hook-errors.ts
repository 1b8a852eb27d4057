// Preloaded into every test file by test/run.ts (node --import). uvu runs a suite's `before` hooks inside a
// try/finally whose `return` drops the hook's error: a file whose set-up failed (a testnet that did not start)
// printed "(0 / 9)" and nothing else. Wrapped here, such an error is printed, then thrown on as before (the
// file still fails). A wrapper and not a fork of uvu: the only thing missing is the message.
import { test } from 'uvu'

type Register = typeof test.before
type Callback = Parameters<Register>[0]
const before = test.before
const after = test.after

function reporting (kind: string, register: Register): Register {
  const wrapped = (fn: Callback): void => {
    register(async (state) => {
      try {
        await fn(state)
      } catch (err) {
        console.error(`\n   FAIL  the file's ${kind} hook failed (no test of it ran as written):\n`, err)
        throw err
      }
    })
  }
  return Object.assign(wrapped, { each: register.each })
}

test.before = reporting('before', before)
test.after = reporting('after', after)
