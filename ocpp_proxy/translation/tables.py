"""Enum correspondences between OCPP 1.6 and OCPP 2.0.1 / 2.1, as data.

Where 2.x has more values than 1.6, several 2.x values map to the nearest 1.6 one; every such
many-to-one entry is listed in docs/translation.md as an approximation.
"""

from __future__ import annotations

# -- connector status (1.6 §7.7 ChargePointStatus; 2.0.1 ConnectorStatus- and ChargingStateEnumType)

#: A 1.6 connector status as a 2.x connector status.
CONNECTOR_STATUS_TO_2X = {
    "Available": "Available",
    "Preparing": "Occupied",
    "Charging": "Occupied",
    "SuspendedEVSE": "Occupied",
    "SuspendedEV": "Occupied",
    "Finishing": "Occupied",
    "Reserved": "Reserved",
    "Unavailable": "Unavailable",
    "Faulted": "Faulted",
}
#: A 1.6 status of a connector in a transaction as the 2.x transaction's charging state.
CHARGING_STATE_TO_2X = {
    "Preparing": "EVConnected",
    "Charging": "Charging",
    "SuspendedEVSE": "SuspendedEVSE",
    "SuspendedEV": "SuspendedEV",
    "Finishing": "EVConnected",
}
#: A 2.x charging state as the 1.6 status of the connector.
CHARGING_STATE_TO_16 = {
    "Charging": "Charging",
    "SuspendedEV": "SuspendedEV",
    "SuspendedEVSE": "SuspendedEVSE",
    "EVConnected": "Preparing",
    "Idle": "Preparing",
}
#: A 2.x connector status as a 1.6 status (Occupied is refined by the charging state).
CONNECTOR_STATUS_TO_16 = {
    "Available": "Available",
    "Occupied": "Preparing",
    "Reserved": "Reserved",
    "Unavailable": "Unavailable",
    "Faulted": "Faulted",
}

# -- stopping a transaction (1.6 §7.30 Reason; 2.0.1 ReasonEnumType, TriggerReasonEnumType)

#: A 1.6 stop reason as the 2.x ``stoppedReason``.
STOP_REASON_TO_2X = {
    "DeAuthorized": "DeAuthorized",
    "EmergencyStop": "EmergencyStop",
    "EVDisconnected": "EVDisconnected",
    "HardReset": "ImmediateReset",
    "Local": "Local",
    "Other": "Other",
    "PowerLoss": "PowerLoss",
    "Reboot": "Reboot",
    "Remote": "Remote",
    "SoftReset": "ImmediateReset",
    "UnlockCommand": "Other",  # 2.x tells it by triggerReason UnlockCommand instead
}
#: A 1.6 stop reason as the ``triggerReason`` of the 2.x Ended event.
STOP_TRIGGER_TO_2X = {
    "DeAuthorized": "Deauthorized",
    "EmergencyStop": "AbnormalCondition",
    "EVDisconnected": "EVCommunicationLost",
    "HardReset": "ResetCommand",
    "Local": "StopAuthorized",
    "Other": "AbnormalCondition",
    "PowerLoss": "AbnormalCondition",
    "Reboot": "AbnormalCondition",
    "Remote": "RemoteStop",
    "SoftReset": "ResetCommand",
    "UnlockCommand": "UnlockCommand",
}
#: A 2.x ``stoppedReason`` as a 1.6 stop reason (2.x-only reasons become Other).
STOP_REASON_TO_16 = {
    "DeAuthorized": "DeAuthorized",
    "EmergencyStop": "EmergencyStop",
    "EVDisconnected": "EVDisconnected",
    "ImmediateReset": "SoftReset",
    "Local": "Local",
    "Other": "Other",
    "PowerLoss": "PowerLoss",
    "Reboot": "Reboot",
    "Remote": "Remote",
}

# -- firmware and logs (1.6 §7.25, §7.24; 2.0.1 FirmwareStatusEnumType, UploadLogStatusEnumType)

#: A 2.x firmware status as the nearest 1.6 one (1.6 §7.25 FirmwareStatus).
FIRMWARE_STATUS_TO_16 = {
    "Downloaded": "Downloaded",
    "DownloadFailed": "DownloadFailed",
    "Downloading": "Downloading",
    "DownloadScheduled": "Idle",
    "DownloadPaused": "Downloading",
    "Idle": "Idle",
    "InstallationFailed": "InstallationFailed",
    "Installing": "Installing",
    "Installed": "Installed",
    "InstallRebooting": "Installing",
    "InstallScheduled": "Downloaded",
    "InstallVerificationFailed": "InstallationFailed",
    "InvalidSignature": "InstallationFailed",
    "SignatureVerified": "Downloaded",
}
#: A 1.6 diagnostics status as a 2.x log upload status.
DIAGNOSTICS_STATUS_TO_2X = {
    "Idle": "Idle",
    "Uploaded": "Uploaded",
    "UploadFailed": "UploadFailure",
    "Uploading": "Uploading",
}
#: A 2.x log upload status as a 1.6 diagnostics status.
LOG_STATUS_TO_16 = {
    "BadMessage": "UploadFailed",
    "Idle": "Idle",
    "NotSupportedOperation": "UploadFailed",
    "PermissionDenied": "UploadFailed",
    "Uploaded": "Uploaded",
    "UploadFailure": "UploadFailed",
    "Uploading": "Uploading",
    "AcceptedCanceled": "Idle",
}

# -- TriggerMessage (1.6 §5.17 MessageTrigger; 2.0.1 MessageTriggerEnumType)

TRIGGER_TO_16 = {
    "BootNotification": "BootNotification",
    "FirmwareStatusNotification": "FirmwareStatusNotification",
    "Heartbeat": "Heartbeat",
    "MeterValues": "MeterValues",
    "StatusNotification": "StatusNotification",
    "LogStatusNotification": "DiagnosticsStatusNotification",
    # A 1.6 charger answers with MeterValues of the transaction, which a 2.x backend gets
    # as TransactionEvent Updated (triggerReason Trigger).
    "TransactionEvent": "MeterValues",
}
TRIGGER_TO_2X = {
    "BootNotification": "BootNotification",
    "FirmwareStatusNotification": "FirmwareStatusNotification",
    "Heartbeat": "Heartbeat",
    "MeterValues": "MeterValues",
    "StatusNotification": "StatusNotification",
    "DiagnosticsStatusNotification": "LogStatusNotification",
}

# -- answers whose 2.x enum is wider than 1.6's

UNLOCK_STATUS_TO_16 = {
    "Unlocked": "Unlocked",
    "UnlockFailed": "UnlockFailed",
    "OngoingAuthorizedTransaction": "UnlockFailed",
    "UnknownConnector": "NotSupported",
}
UNLOCK_STATUS_TO_2X = {
    "Unlocked": "Unlocked",
    "UnlockFailed": "UnlockFailed",
    "NotSupported": "UnlockFailed",
}
