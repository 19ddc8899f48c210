import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type {
  FileControl,
  NewScheduledFile,
  Schedule,
  ScheduleChanges,
  ScheduledFile,
  ScheduleView,
} from '../../core/schedule/schedule';
import { isConditionFailure } from './dynamodb-errors';
import { ledgerExpiresAt, type LedgerRetention } from './dynamodb-ledger-expiry';
import { LANDINGS_SORT_KEY, SCHEDULE_PARTITION, scheduledFileKey, schedulePartnerKey } from './ledger-keys';

const FILE_PREFIX = scheduledFileKey('');
const PARTNER_PREFIX = schedulePartnerKey('');
const KEY_ATTRIBUTES = new Set(['pk', 'sk', 'expiresAt']);

/**
 * The schedule in the ledger table: one partition (`pk` = `schedule`) holding an item per file in flight
 * (`file#<sha256>`), one per partner an operator paused or whose users file ended (`partner#<name>`), and the
 * one-machine runner's `landings` mark. The files in flight are tens at most (each is a partner file being
 * loaded), so the whole view is one strongly consistent Query of a few KB, read every few seconds by each
 * refilling file and cached by the dispatchers.
 */
export class DynamoDbSchedule implements Schedule {
  private readonly documents: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    private readonly tableName: string,
    private readonly retention: LedgerRetention = {},
  ) {
    this.documents = DynamoDBDocumentClient.from(client);
  }

  async view(): Promise<ScheduleView> {
    const files: ScheduledFile[] = [];
    const pausedPartners: string[] = [];
    const usersFinishedAt: Record<string, string> = {};
    let landingsClosedAt: string | undefined;
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.documents.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': SCHEDULE_PARTITION },
          ConsistentRead: true,
          ...(startKey ? { ExclusiveStartKey: startKey } : {}),
        }),
      );
      startKey = page.LastEvaluatedKey;
      for (const item of page.Items ?? []) {
        const sk = String(item.sk);
        if (sk.startsWith(FILE_PREFIX)) files.push(toFile(item));
        else if (sk.startsWith(PARTNER_PREFIX)) {
          const partner = sk.slice(PARTNER_PREFIX.length);
          if (item.paused === true) pausedPartners.push(partner);
          if (typeof item.usersFinishedAt === 'string') usersFinishedAt[partner] = item.usersFinishedAt;
        } else if (sk === LANDINGS_SORT_KEY && typeof item.closedAt === 'string') landingsClosedAt = item.closedAt;
      }
    } while (startKey);
    files.sort((a, b) => a.landedAt.localeCompare(b.landedAt) || a.fileId.localeCompare(b.fileId));
    return { files, pausedPartners, usersFinishedAt, ...(landingsClosedAt ? { landingsClosedAt } : {}) };
  }

  async register(file: NewScheduledFile): Promise<void> {
    try {
      await this.documents.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            pk: SCHEDULE_PARTITION,
            sk: scheduledFileKey(file.fileId),
            ...file,
            state: 'queued',
            updatedAt: new Date().toISOString(),
            expiresAt: ledgerExpiresAt(this.retention),
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }

  async read(fileId: string): Promise<ScheduledFile | undefined> {
    const { Item } = await this.documents.send(
      new GetCommand({ TableName: this.tableName, Key: this.fileKey(fileId), ConsistentRead: true }),
    );
    return Item ? toFile(Item) : undefined;
  }

  async update(fileId: string, changes: ScheduleChanges): Promise<void> {
    const sets: string[] = ['#updatedAt = :updatedAt', 'expiresAt = :expiresAt'];
    const removes: string[] = [];
    const names: Record<string, string> = { '#updatedAt': 'updatedAt' };
    const values: Record<string, unknown> = {
      ':updatedAt': new Date().toISOString(),
      ':expiresAt': ledgerExpiresAt(this.retention),
    };
    for (const [name, value] of Object.entries(changes)) {
      if (value === undefined) continue;
      names[`#${name}`] = name;
      if (value === null) removes.push(`#${name}`);
      else {
        sets.push(`#${name} = :${name}`);
        values[`:${name}`] = value;
      }
    }
    await this.conditionalUpdate(
      fileId,
      `SET ${sets.join(', ')}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}`,
      names,
      values,
    );
  }

  async takeTurnToken(fileId: string, taskToken: string): Promise<boolean> {
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: this.fileKey(fileId),
          UpdateExpression: 'REMOVE turnToken',
          ConditionExpression: 'turnToken = :token',
          ExpressionAttributeValues: { ':token': taskToken },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  /** Not once the file is finalising: its calls are over, and its report must see one control throughout. */
  async setControl(fileId: string, control: FileControl | null): Promise<ScheduledFile | undefined> {
    const values: Record<string, unknown> = { ':updatedAt': new Date().toISOString(), ':finalising': 'finalising' };
    if (control) values[':control'] = control;
    return this.conditionalUpdate(
      fileId,
      control ? 'SET #control = :control, #updatedAt = :updatedAt' : 'SET #updatedAt = :updatedAt REMOVE #control',
      { '#control': 'control', '#updatedAt': 'updatedAt', '#state': 'state' },
      values,
      '#state <> :finalising',
    );
  }

  async setPartnerPaused(partner: string, paused: boolean): Promise<void> {
    await this.documents.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { pk: SCHEDULE_PARTITION, sk: schedulePartnerKey(partner) },
        UpdateExpression: paused ? 'SET paused = :true' : 'REMOVE paused',
        ...(paused ? { ExpressionAttributeValues: { ':true': true } } : {}),
      }),
    );
  }

  async finish(file: Pick<ScheduledFile, 'fileId' | 'partner' | 'kind'>, at: string): Promise<void> {
    if (file.kind === 'users') {
      await this.documents
        .send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { pk: SCHEDULE_PARTITION, sk: schedulePartnerKey(file.partner) },
            UpdateExpression: 'SET usersFinishedAt = :at',
            ConditionExpression: 'attribute_not_exists(usersFinishedAt) OR usersFinishedAt < :at',
            ExpressionAttributeValues: { ':at': at },
          }),
        )
        .catch((error: unknown) => {
          if (!isConditionFailure(error)) throw error;
        });
    }
    await this.documents.send(new DeleteCommand({ TableName: this.tableName, Key: this.fileKey(file.fileId) }));
  }

  async closeLandings(at: string): Promise<void> {
    await this.documents.send(
      new PutCommand({
        TableName: this.tableName,
        Item: {
          pk: SCHEDULE_PARTITION,
          sk: LANDINGS_SORT_KEY,
          closedAt: at,
          expiresAt: ledgerExpiresAt(this.retention),
        },
      }),
    );
  }

  private fileKey(fileId: string) {
    return { pk: SCHEDULE_PARTITION, sk: scheduledFileKey(fileId) };
  }

  /** An update of a file still in flight: a finished file's item is gone and stays gone. */
  private async conditionalUpdate(
    fileId: string,
    expression: string,
    names: Record<string, string>,
    values: Record<string, unknown>,
    condition?: string,
  ): Promise<ScheduledFile | undefined> {
    try {
      const { Attributes } = await this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: this.fileKey(fileId),
          UpdateExpression: expression,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ConditionExpression: condition ? `attribute_exists(pk) AND ${condition}` : 'attribute_exists(pk)',
          ReturnValues: 'ALL_NEW',
        }),
      );
      return Attributes ? toFile(Attributes) : undefined;
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw error;
    }
  }
}

function toFile(item: Record<string, unknown>): ScheduledFile {
  return Object.fromEntries(
    Object.entries(item).filter(([key]) => !KEY_ATTRIBUTES.has(key)),
  ) as unknown as ScheduledFile;
}
