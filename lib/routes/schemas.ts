/** JSON schemas shared by the dashboard's routes (Fastify validates with them and serialises with them). */

export const TIME_RANGE_QUERY = {
  type: 'object',
  properties: {
    from: { type: 'string', format: 'date-time' },
    to: { type: 'string', format: 'date-time' },
    tz: { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9_+\\-/]{0,63}$' }
  },
  additionalProperties: false
} as const

export const ID_PARAMS = {
  type: 'object',
  properties: { id: { type: 'integer', minimum: 1, maximum: 2147483647 } },
  required: ['id']
} as const

export const ERROR_REPLY = {
  type: 'object',
  properties: { error: { type: 'string' } }
} as const

const number = { type: ['number', 'null'] } as const
export const DISTRIBUTION = {
  type: 'object',
  properties: { count: { type: 'integer' }, min: number, q1: number, median: number, q3: number, p95: number, p99: number, max: number }
} as const

export const WINDOW_COUNTS = {
  type: 'object',
  properties: { hits: { type: 'integer' }, clientErrors: { type: 'integer' }, serverErrors: { type: 'integer' }, median: number }
} as const

export const USERNAME = { type: 'string', pattern: '^[A-Za-z0-9_.@-]{1,64}$' } as const
export const PASSWORD = { type: 'string', minLength: 8, maxLength: 1024 } as const
