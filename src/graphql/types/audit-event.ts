import { AUTH_EVENT_TYPES } from '../../audit/audit-log.js';
import { MAX_AUDIT_PAGE } from '../../audit/audit-query.js';
import type { AuthEventRow } from '../../db/schema.js';
import { withTypedErrors } from '../access-errors.js';
import { strictRowId } from '../arguments.js';
import { builder } from '../builder.js';
import { guarded } from '../policy.js';
import { connectionOf } from './connection.js';

const AuditEvent = builder.objectRef<AuthEventRow>('AuditEvent').implement({
  description: 'One entry of the audit log. Never holds a password or a token.',
  fields: (t) => ({
    id: t.exposeID('id'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    type: t.exposeString('type', { description: `One of: ${AUTH_EVENT_TYPES.join(', ')}.` }),
    userId: t.exposeID('userId', { nullable: true, description: 'The user concerned, when known.' }),
    ip: t.exposeString('ip', { nullable: true }),
    userAgent: t.exposeString('userAgent', { nullable: true }),
    detail: t.string({
      description: 'Small JSON object of facts about the event (ids, role names, reasons).',
      resolve: (event) => JSON.stringify(event.detail),
    }),
  }),
});

const AuditEventConnection = connectionOf('AuditEvent', AuditEvent, 'A page of audit events, newest first.');

builder.queryField('auditEvents', (t) =>
  t.field({
    type: AuditEventConnection,
    args: {
      first: t.arg.int({ defaultValue: 50, description: `1 to ${MAX_AUDIT_PAGE}.` }),
      after: t.arg.string({ description: 'The `endCursor` of the previous page.' }),
      userId: t.arg.id({ description: 'Only events about this user.' }).validate(strictRowId('userId is not a user id.')),
      type: t.arg.string({ description: 'Only events of this type.' }),
    },
    ...guarded({ permission: 'audit:read' }, 'The audit log, newest first.'),
    resolve: (_root, args, ctx) =>
      withTypedErrors(() =>
        ctx.services.auditQuery.list({ first: args.first ?? 50, after: args.after, userId: args.userId, type: args.type }),
      ),
  }),
);
