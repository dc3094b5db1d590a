/** A TCP proxy between the plugin and PostgreSQL that a test can cut and restore. */
export declare class TcpProxy {
  constructor (targetPort?: number, targetHost?: string)
  port: number
  start (): Promise<this>
  url (database?: string): string
  cut (): void
  restore (): void
  close (): Promise<void>
}
