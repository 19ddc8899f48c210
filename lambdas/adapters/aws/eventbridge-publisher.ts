import { PutEventsCommand, type EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { EventPublisher, FinalSummary } from '../../core/workflow/finalise-file';

export const EVENT_SOURCE = 'crm-ingestion';

/** `file.completed` on an EventBridge bus, with the file's summary (counts and reasons: no record data). */
export class EventBridgePublisher implements EventPublisher {
  constructor(
    private readonly events: EventBridgeClient,
    private readonly busName: string,
  ) {}

  async fileCompleted(summary: FinalSummary): Promise<void> {
    const { FailedEntryCount, Entries } = await this.events.send(
      new PutEventsCommand({
        Entries: [
          {
            EventBusName: this.busName,
            Source: EVENT_SOURCE,
            DetailType: 'file.completed',
            Detail: JSON.stringify(summary),
          },
        ],
      }),
    );
    if (FailedEntryCount) throw new Error(`file.completed not published: ${Entries?.[0]?.ErrorCode ?? 'unknown'}`);
  }
}
