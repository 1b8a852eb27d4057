// A multi-host network on one Linux machine, for tests and benchmarks: each host is its own network
// namespace with its own addresses, joined by veth pairs to one bridge; the bridge also carries the
// chain (anvil, in the calling process's namespace). A host can sit behind a NAT: its own router
// namespace masquerades its traffic (nftables) and forwards nothing that it did not start, so it
// cannot be dialled. Needs root, `ip` and `nft`; netnsUnavailable() says why not, for a test to
// print before it skips.
//
//   bridge sdtebr<pid>  10.B.C.1/24 (anvil)       "internet" PUBLIC_PREFIX.0/24 (only inside namespaces)
//     ├─ host  sdte-<pid>-<name>   eth0 10.B.C.(10+i), PUBLIC.(10+i)      no default route
//     └─ router sdte-<pid>-nat-<name>  eth0 10.B.C.(150+j), PUBLIC.(150+j) ─ lan0 192.168.(1+j).1
//          └─ host sdte-<pid>-<name>   eth0 192.168.(1+j).2, default via the router
//
// Public hosts have no default route, so dialling a private address fails at once (unreachable)
// rather than after a timeout. Delay: a delaying TCP relay (tcp-relay.ts) in the path, since this
// kernel has no netem; loss: the NAT routers drop a share of forwarded packets (nftables numgen),
// which TCP retransmits. Every neighbour (ARP) entry is permanent, set when the network is built
// (staticNeighbours: the kernel's learned ones are bounded machine-wide).
//
// Everything is named after the creating process's pid: create() first removes what a dead process
// left behind (a test killed by its timeout), destroy() removes this network's, and an exit hook
// runs destroy's synchronous part if the process ends without it.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Server } from 'node:net'
import { startTcpRelay, tcpRelayArgs, type TcpRelayOptions } from './tcp-relay.ts'
import type { DaemonPlacement } from './testnet.ts'
import { RpcClient } from '../index.ts'

/**
 * The "internet" of the namespaces: addresses libp2p counts as public (it treats 10/8, 192.168/16
 * and the documentation ranges as private, and DCUtR only dials public ones). Only namespaces have
 * routes to it; the calling machine's routing table never does.
 */
export const PUBLIC_PREFIX = '11.7.0'
/**
 * Where a delaying relay with `mirrorSources` connects to its daemon from: PEER_SOURCE_PREFIX.<last
 * byte of the remote host's address>, a local address (on lo) of the relay's namespace, so that the
 * daemon tells its remote peers apart by address as it would without the relay (tcp-relay.ts).
 */
export const PEER_SOURCE_PREFIX = '11.8.0'
/** First byte of the MACs on the bridge (locally administered, unicast; the rest: pid and index). */
const BRIDGE_SIDE_MAC = 0x02
/** First byte of the MACs on each NAT router's LAN (its own link; index 1 the router, 2 the host). */
const LAN_SIDE_MAC = 0x06
/** The bridge's index in its MAC (hosts use 10..109 and 150..249). */
const BRIDGE_MAC_INDEX = 1
/** Node as the tests run it (the pinned Node 22 when started through npm). */
const NODE = process.execPath
const TCP_RELAY_SCRIPT = new URL('./tcp-relay.ts', import.meta.url).pathname
const NAME_PATTERN = /^[a-z][a-z0-9]{0,11}$/

/** Where controlClient's relay in a daemon's namespace listens: a Unix socket in its datadir. */
export function controlSocket (datadir: string): string {
  return join(datadir, 'api.sock')
}

export class NetnsError extends Error {
  override name = 'NetnsError'
}

function run (cmd: string, args: string[], input?: string): string {
  try {
    return execFileSync(cmd, args, { input, stdio: ['pipe', 'pipe', 'pipe'] }).toString()
  } catch (err) {
    const e = err as { stderr?: Buffer, message: string }
    throw new NetnsError(`${cmd} ${args.join(' ')}: ${e.stderr?.toString().trim() ?? e.message}`)
  }
}

function tryRun (cmd: string, args: string[]): void {
  try { execFileSync(cmd, args, { stdio: 'ignore' }) } catch {}
}

function has (cmd: string): boolean {
  try { execFileSync(cmd, ['-V'], { stdio: 'ignore' }); return true } catch {}
  try { execFileSync(cmd, ['--version'], { stdio: 'ignore' }); return true } catch { return false }
}

/** Why this machine cannot run a namespaced network (null: it can). Tests print it and skip. */
export function netnsUnavailable (): string | null {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`
  if (process.getuid?.() !== 0) return 'network namespaces need root (ip netns, veth, nftables)'
  if (!has('ip')) return 'the ip command (iproute2) is missing'
  if (!has('nft')) return 'the nft command is missing (apt-get install -y nftables)'
  const probe = `sdte-${process.pid}-probe`
  try {
    run('ip', ['netns', 'add', probe])
    run('ip', ['-n', probe, 'link', 'set', 'lo', 'up'])
    run('ip', ['netns', 'exec', probe, 'nft', 'list', 'tables'])
  } catch (err) {
    return `network namespaces are not permitted here: ${(err as Error).message}`
  } finally {
    tryRun('ip', ['netns', 'del', probe])
  }
  return null
}

function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM' }
}

/** Removes namespaces and bridges left by testnet processes that are gone. */
export function removeStaleNetworks (): void {
  const namespaces = run('ip', ['netns', 'list']).split('\n').map(l => l.split(' ')[0]).filter(n => n !== '')
  for (const ns of namespaces) {
    const pid = /^sdte-(\d+)-/.exec(ns)?.[1]
    if (pid !== undefined && !alive(Number(pid))) killAndDelete(ns)
  }
  for (const line of run('ip', ['-o', 'link', 'show', 'type', 'bridge']).split('\n')) {
    const pid = /^\d+: sdtebr(\d+)[:@]/.exec(line)?.[1]
    if (pid !== undefined && !alive(Number(pid))) tryRun('ip', ['link', 'del', `sdtebr${pid}`])
  }
}

function killAndDelete (ns: string): void {
  let pids: string[] = []
  try { pids = execFileSync('ip', ['netns', 'pids', ns], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().split('\n').filter(p => p !== '') } catch {}
  for (const pid of pids) { try { process.kill(Number(pid), 'SIGKILL') } catch {} }
  tryRun('ip', ['netns', 'del', ns])
}

export interface NetHostSpec {
  /** Lowercase letters and digits, at most 12. */
  name: string
  /** Behind its own NAT router: can dial out, cannot be dialled. Default false. */
  nat?: boolean
}

export interface NetHost {
  name: string
  ns: string
  nat: boolean
  /** The address its daemon listens on: public (PUBLIC_PREFIX) or, behind a NAT, its LAN address. */
  ip: string
  /** The address its traffic appears from to the others (its router's public address behind a NAT). */
  publicIp: string
  /** Prefix that runs a command in this host's namespace. */
  wrap: string[]
}

export interface NetnsNetworkOptions {
  hosts: NetHostSpec[]
  /** Forwarded packets each NAT router drops, per thousand (TCP retransmits them). Default 0. */
  lossPerMille?: number
}

/** Names carry the pid, so a process builds one network at a time. */
let current: NetnsNetwork | null = null

export class NetnsNetwork {
  readonly id = process.pid
  readonly bridge = `sdtebr${process.pid}`
  /** The bridge's address in the calling namespace: where the chain listens. */
  readonly chainHost: string
  readonly hosts = new Map<string, NetHost>()
  /** The last bytes of the addresses hosts dial from (public hosts and NAT routers). */
  private readonly sourceBytes: number[] = []
  /** The namespace plugged into the bridge (a public host or a NAT router) by its address's last byte. */
  private readonly bridged = new Map<number, string>()
  /** Each NAT host's router and LAN. */
  private readonly lans: Array<{ router: string, ns: string, lan: string }> = []
  /** Namespaces that have the PEER_SOURCE_PREFIX addresses. */
  private readonly mirrored = new Set<string>()
  private readonly namespaces: string[] = []
  private readonly children: ChildProcess[] = []
  /** Relay processes started with a delay file, by that file. */
  private readonly delayed = new Map<string, ChildProcess[]>()
  private readonly servers: Server[] = []
  private readonly onExit = (): void => { this.destroySync() }
  private destroyed = false

  private constructor (chainHost: string) {
    this.chainHost = chainHost
  }

  host (name: string): NetHost {
    const h = this.hosts.get(name)
    if (h === undefined) throw new NetnsError(`no host ${name}`)
    return h
  }

  /** Builds the network. Throws NetnsError (after removing what it built) if a step fails. */
  static async create (o: NetnsNetworkOptions): Promise<NetnsNetwork> {
    const names = new Set<string>()
    for (const h of o.hosts) {
      if (!NAME_PATTERN.test(h.name) || names.has(h.name)) throw new NetnsError(`bad or repeated host name: ${h.name}`)
      names.add(h.name)
    }
    const loss = o.lossPerMille ?? 0
    if (!Number.isInteger(loss) || loss < 0 || loss >= 1000) throw new NetnsError('lossPerMille must be an integer 0..999')
    if (o.hosts.filter(h => h.nat !== true).length > 100 || o.hosts.filter(h => h.nat === true).length > 100) throw new NetnsError('at most 100 public and 100 NAT hosts')
    if (current !== null) throw new NetnsError('this process already has a network (destroy it first)')
    removeStaleNetworks()
    const net = new NetnsNetwork(`10.${100 + (process.pid >> 8) % 100}.${process.pid % 256}.1`)
    process.once('exit', net.onExit)
    try {
      net.build(o.hosts, loss)
      current = net
    } catch (err) {
      net.destroySync()
      throw err
    }
    return net
  }

  private addNamespace (ns: string): void {
    run('ip', ['netns', 'add', ns])
    this.namespaces.push(ns)
    run('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
  }

  /**
   * A MAC address of this network: locally administered (first byte `kind`: BRIDGE_SIDE_MAC or
   * LAN_SIDE_MAC), then the pid and the host's index, so that permanent neighbour entries can name
   * it before the interface exists (staticNeighbours).
   */
  private mac (kind: number, index: number): string {
    return [kind, 0, (this.id >> 16) & 255, (this.id >> 8) & 255, this.id & 255, index].map(b => b.toString(16).padStart(2, '0')).join(':')
  }

  /** A veth from the bridge into namespace ns, named eth0 there, with the given addresses. */
  private plug (ns: string, index: number, addresses: string[]): void {
    const outer = `sv${this.id}x${index}`
    run('ip', ['link', 'add', outer, 'type', 'veth', 'peer', 'name', 'eth0', 'address', this.mac(BRIDGE_SIDE_MAC, index), 'netns', ns])
    run('ip', ['link', 'set', outer, 'master', this.bridge, 'up'])
    for (const a of addresses) run('ip', ['-n', ns, 'addr', 'add', a, 'dev', 'eth0'])
    run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up'])
  }

  private build (hosts: NetHostSpec[], lossPerMille: number): void {
    const sub = this.chainHost.slice(0, this.chainHost.lastIndexOf('.'))
    // A fixed address (a bridge otherwise takes its ports' lowest), for the hosts' neighbour entries.
    run('ip', ['link', 'add', this.bridge, 'address', this.mac(BRIDGE_SIDE_MAC, BRIDGE_MAC_INDEX), 'type', 'bridge'])
    run('ip', ['addr', 'add', `${this.chainHost}/24`, 'dev', this.bridge])
    run('ip', ['link', 'set', this.bridge, 'up'])
    let pub = 0
    let nat = 0
    for (const h of hosts) {
      const ns = `sdte-${this.id}-${h.name}`
      if (h.nat !== true) {
        const i = 10 + pub++
        this.addNamespace(ns)
        this.plug(ns, i, [`${sub}.${i}/24`, `${PUBLIC_PREFIX}.${i}/24`])
        const ip = `${PUBLIC_PREFIX}.${i}`
        this.sourceBytes.push(i)
        this.bridged.set(i, ns)
        this.hosts.set(h.name, { name: h.name, ns, nat: false, ip, publicIp: ip, wrap: ['ip', 'netns', 'exec', ns] })
        continue
      }
      const j = nat++
      const router = `sdte-${this.id}-nat-${h.name}`
      const routerPublic = `${PUBLIC_PREFIX}.${150 + j}`
      this.sourceBytes.push(150 + j)
      this.bridged.set(150 + j, router)
      this.addNamespace(router)
      this.plug(router, 150 + j, [`${sub}.${150 + j}/24`, `${routerPublic}/24`])
      this.addNamespace(ns)
      const lan = `192.168.${1 + j}`
      run('ip', ['-n', router, 'link', 'add', 'lan0', 'address', this.mac(LAN_SIDE_MAC, 1), 'type', 'veth', 'peer', 'name', 'eth0', 'address', this.mac(LAN_SIDE_MAC, 2), 'netns', ns])
      run('ip', ['-n', router, 'addr', 'add', `${lan}.1/24`, 'dev', 'lan0'])
      run('ip', ['-n', router, 'link', 'set', 'lan0', 'up'])
      run('ip', ['-n', ns, 'addr', 'add', `${lan}.2/24`, 'dev', 'eth0'])
      run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up'])
      run('ip', ['-n', ns, 'route', 'add', 'default', 'via', `${lan}.1`])
      run('ip', ['netns', 'exec', router, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1'])
      // Masquerade what leaves for the bridge; forward only what the LAN started (and its replies).
      const drop = lossPerMille > 0 ? `numgen random mod 1000 < ${lossPerMille} drop\n` : ''
      run('ip', ['netns', 'exec', router, 'nft', '-f', '-'], `
table ip sdte_nat {
  chain postrouting { type nat hook postrouting priority srcnat; policy accept; oifname "eth0" masquerade; }
  chain forward {
    type filter hook forward priority filter; policy drop;
    ${drop}ct state established,related accept
    iifname "lan0" oifname "eth0" accept
  }
}
`)
      this.hosts.set(h.name, { name: h.name, ns, nat: true, ip: `${lan}.2`, publicIp: routerPublic, wrap: ['ip', 'netns', 'exec', ns] })
      this.lans.push({ router, ns, lan })
    }
    this.staticNeighbours(sub)
  }

  /**
   * Permanent neighbour (ARP) entries for every address on the bridge and on each NAT LAN, in every
   * namespace and on the bridge here. Why: the kernel keeps one IPv4 neighbour table for all
   * namespaces, and net.ipv4.neigh.default.gc_thresh3 (1024 by default) bounds its learned entries
   * machine-wide; hosts on one bridge that all talk to each other learn n² of them (50 daemons:
   * about 2,500), and once it is full (`neighbour: arp_cache: neighbor table overflow!` in dmesg)
   * the kernel refuses new ones while the learned ones stay fresh: a namespace that starts talking
   * then cannot resolve the chain's bridge address (its first RPC times out, or EHOSTUNREACH), while
   * the hosts already talking carry on. Permanent entries are not counted against that bound and
   * need no ARP, so no network of ours fills the table, whatever its size or whatever else runs.
   */
  private staticNeighbours (sub: string): void {
    const bridgeMac = this.mac(BRIDGE_SIDE_MAC, BRIDGE_MAC_INDEX)
    const entry = (ip: string, mac: string, dev: string): string => `neigh replace ${ip} lladdr ${mac} dev ${dev} nud permanent\n`
    run('ip', ['-batch', '-'], this.sourceBytes.map(b => entry(`${sub}.${b}`, this.mac(BRIDGE_SIDE_MAC, b), this.bridge)).join(''))
    for (const [i, ns] of this.bridged) {
      const others = this.sourceBytes.filter(b => b !== i)
      run('ip', ['-n', ns, '-batch', '-'], entry(this.chainHost, bridgeMac, 'eth0') + others.map(b =>
        entry(`${sub}.${b}`, this.mac(BRIDGE_SIDE_MAC, b), 'eth0') + entry(`${PUBLIC_PREFIX}.${b}`, this.mac(BRIDGE_SIDE_MAC, b), 'eth0')).join(''))
    }
    for (const { router, ns, lan } of this.lans) {
      run('ip', ['-n', router, '-batch', '-'], entry(`${lan}.2`, this.mac(LAN_SIDE_MAC, 2), 'lan0'))
      run('ip', ['-n', ns, '-batch', '-'], entry(`${lan}.1`, this.mac(LAN_SIDE_MAC, 1), 'eth0'))
    }
  }

  /** Starts a process in a host's namespace; destroy() ends it. */
  spawnIn (name: string, command: string, args: string[]): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.host(name).ns, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.children.push(child)
    return child
  }

  /**
   * A delaying (and optionally cutting) TCP relay in a host's namespace: listens on listenPort of its
   * address and forwards to target. Resolves once it listens.
   */
  async delayRelay (name: string, listenPort: number, target: string, o: { delayMs: number, cutProbability?: number, mirrorSources?: boolean }): Promise<string> {
    const listen = `${this.host(name).ip}:${listenPort}`
    await this.relays(name, [{ listen, target, ...o }])
    return listen
  }

  /**
   * Several TCP relays (tcp-relay.ts) in one process in a host's namespace (a Node process costs
   * about 65 MB resident: a network of 50 daemons starts one per host, not two). With mirrorSources
   * a relay connects to its target from PEER_SOURCE_PREFIX.<the remote host's last byte>, so that a
   * daemon behind it tells its peers apart by address. Resolves once all listen.
   */
  async relays (name: string, relays: Array<Omit<TcpRelayOptions, 'sourcePrefix'> & { mirrorSources?: boolean }>): Promise<void> {
    const h = this.host(name)
    const args = [TCP_RELAY_SCRIPT]
    for (const [i, { mirrorSources, ...r }] of relays.entries()) {
      if (mirrorSources === true && !this.mirrored.has(h.ns)) {
        run('ip', ['-n', h.ns, '-batch', '-'], this.sourceBytes.map(b => `addr add ${PEER_SOURCE_PREFIX}.${b}/32 dev lo\n`).join(''))
        this.mirrored.add(h.ns)
      }
      args.push(...(i > 0 ? ['--and'] : []), ...tcpRelayArgs({ ...r, ...(mirrorSources === true && { sourcePrefix: PEER_SOURCE_PREFIX }) }))
    }
    const child = this.spawnIn(name, NODE, args)
    await this.waitListening(child)
    for (const file of new Set(relays.map(r => r.delayFile).filter(f => f !== undefined))) this.delayed.set(file, [...(this.delayed.get(file) ?? []), child])
  }

  /**
   * Sets the delay of every relay started with this delayFile (relays()) while they run: writes the
   * file, signals each, and resolves once all took it. Chunks already waiting keep their due time.
   */
  async setRelayDelay (delayFile: string, delayMs: number): Promise<void> {
    writeFileSync(delayFile, String(delayMs))
    await Promise.all((this.delayed.get(delayFile) ?? []).map(async child => await new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer): void => {
        if (!d.toString().includes('delay set')) return
        child.stdout?.off('data', onData)
        resolve()
      }
      child.stdout?.on('data', onData)
      if (!child.kill('SIGUSR2')) reject(new NetnsError('a relay process is gone'))
    })))
  }

  /**
   * Where each daemon of a LocalTestnet runs (its `place` option): in its host's namespace, listening
   * on the host's address at p2pPort; a public host's daemon announces that address at
   * announcePort (a delaying relay's port, say; default p2pPort), one behind a NAT announces nothing
   * (it reserves a relay slot); its control API is reached through controlClient (socketRelayed:
   * each host's relays() already carry its controlSocket to the daemon's fixed control API port).
   */
  placeDaemons (o: { hostOf: (daemon: string) => string, p2pPort: number, announcePort?: (host: NetHost, daemon: string) => number, socketRelayed?: boolean }): (daemon: string) => DaemonPlacement {
    return (daemon) => {
      const h = this.host(o.hostOf(daemon))
      return {
        wrap: h.wrap,
        args: ['--listen', `/ip4/${h.ip}/tcp/${o.p2pPort}`, ...(h.nat ? [] : ['--announce', `/ip4/${h.ip}/tcp/${o.announcePort?.(h, daemon) ?? o.p2pPort}`])],
        client: async (datadir) => await this.controlClient(h.name, datadir, { socketRelayed: o.socketRelayed })
      }
    }
  }

  private async waitListening (child: ChildProcess): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      let err = ''
      child.stderr?.on('data', (d: Buffer) => { err += d.toString() })
      child.stdout?.on('data', (d: Buffer) => { if (d.toString().includes('listening')) resolve() })
      child.once('exit', code => reject(new NetnsError(`tcp relay exited with ${code}: ${err}`)))
    })
  }

  /**
   * A control API client for a daemon in a host's namespace (its API listens on that namespace's
   * loopback): a relay there carries it to a Unix socket in the datadir (controlSocket), and one
   * here to our loopback. With `socketRelayed` the relay there already runs (started with relays()).
   */
  async controlClient (name: string, datadir: string, o: { socketRelayed?: boolean } = {}): Promise<RpcClient> {
    const api = new URL(readFileSync(join(datadir, 'api'), 'utf8').trim())
    const token = readFileSync(join(datadir, 'api-token'), 'utf8').trim()
    const socket = controlSocket(datadir)
    if (o.socketRelayed !== true) await this.waitListening(this.spawnIn(name, NODE, [TCP_RELAY_SCRIPT, socket, `127.0.0.1:${api.port}`]))
    const server = await startTcpRelay({ listen: '127.0.0.1:0', target: socket })
    this.servers.push(server)
    const { port } = server.address() as { port: number }
    return new RpcClient(`http://127.0.0.1:${port}/`, token)
  }

  /** Whether a TCP connection from one host to ip:port is accepted within timeoutMs. */
  canConnect (from: string, ip: string, port: number, timeoutMs = 3000): boolean {
    const script = `const s=require('net').connect(${port},${JSON.stringify(ip)});s.on('connect',()=>process.exit(0));s.on('error',()=>process.exit(1));setTimeout(()=>process.exit(2),${timeoutMs})`
    try {
      execFileSync('ip', ['netns', 'exec', this.host(from).ns, NODE, '-e', script], { stdio: 'ignore' })
      return true
    } catch {
      return false
    }
  }

  private destroySync (): void {
    if (this.destroyed) return
    this.destroyed = true
    if (current === this) current = null
    process.removeListener('exit', this.onExit)
    for (const s of this.servers) s.close()
    for (const c of this.children) { if (c.exitCode === null) c.kill('SIGKILL') }
    // Deleting a namespace deletes its end of each veth, and so the pair; any process we started
    // there (a daemon that outlived its test) is killed first.
    for (const ns of [...this.namespaces].reverse()) killAndDelete(ns)
    tryRun('ip', ['link', 'del', this.bridge])
  }

  /** Ends every process in the network's namespaces and removes the namespaces and the bridge. */
  async destroy (): Promise<void> {
    this.destroySync()
  }

  /** Whether the namespaces of this network still exist (for the cleanup test). */
  exists (): boolean {
    return this.namespaces.some(ns => existsSync(`/run/netns/${ns}`)) || run('ip', ['-o', 'link', 'show']).includes(`${this.bridge}:`)
  }
}
