package embedded

import (
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// codeNames maps every error code of MongoDB's src/mongo/base/error_codes.yml
// (current server, obsolete codes under their last name) to its codeName,
// which mongod sends beside every code.
var codeNames = map[int32]string{
	0:        "OK",
	1:        "InternalError",
	2:        "BadValue",
	4:        "NoSuchKey",
	5:        "GraphContainsCycle",
	6:        "HostUnreachable",
	7:        "HostNotFound",
	8:        "UnknownError",
	9:        "FailedToParse",
	10:       "CannotMutateObject",
	11:       "UserNotFound",
	12:       "UnsupportedFormat",
	13:       "Unauthorized",
	14:       "TypeMismatch",
	15:       "Overflow",
	16:       "InvalidLength",
	17:       "ProtocolError",
	18:       "AuthenticationFailed",
	19:       "CannotReuseObject",
	20:       "IllegalOperation",
	21:       "EmptyArrayOperation",
	22:       "InvalidBSON",
	23:       "AlreadyInitialized",
	24:       "LockTimeout",
	25:       "RemoteValidationError",
	26:       "NamespaceNotFound",
	27:       "IndexNotFound",
	28:       "PathNotViable",
	29:       "NonExistentPath",
	30:       "InvalidPath",
	31:       "RoleNotFound",
	32:       "RolesNotRelated",
	33:       "PrivilegeNotFound",
	34:       "CannotBackfillArray",
	35:       "UserModificationFailed",
	36:       "RemoteChangeDetected",
	37:       "FileRenameFailed",
	38:       "FileNotOpen",
	39:       "FileStreamFailed",
	40:       "ConflictingUpdateOperators",
	41:       "FileAlreadyOpen",
	42:       "LogWriteFailed",
	43:       "CursorNotFound",
	45:       "UserDataInconsistent",
	46:       "LockBusy",
	47:       "NoMatchingDocument",
	48:       "NamespaceExists",
	49:       "InvalidRoleModification",
	50:       "MaxTimeMSExpired",
	51:       "ManualInterventionRequired",
	52:       "DollarPrefixedFieldName",
	53:       "InvalidIdField",
	54:       "NotSingleValueField",
	55:       "InvalidDBRef",
	56:       "EmptyFieldName",
	57:       "DottedFieldName",
	58:       "RoleModificationFailed",
	59:       "CommandNotFound",
	61:       "ShardKeyNotFound",
	62:       "OplogOperationUnsupported",
	63:       "StaleShardVersion",
	64:       "WriteConcernTimeout",
	65:       "MultipleErrorsOccurred",
	66:       "ImmutableField",
	67:       "CannotCreateIndex",
	68:       "IndexAlreadyExists",
	69:       "AuthSchemaIncompatible",
	70:       "ShardNotFound",
	71:       "ReplicaSetNotFound",
	72:       "InvalidOptions",
	73:       "InvalidNamespace",
	74:       "NodeNotFound",
	75:       "WriteConcernLegacyOK",
	76:       "NoReplicationEnabled",
	77:       "OperationIncomplete",
	78:       "CommandResultSchemaViolation",
	79:       "UnknownReplWriteConcern",
	80:       "RoleDataInconsistent",
	81:       "NoMatchParseContext",
	82:       "NoProgressMade",
	83:       "RemoteResultsUnavailable",
	85:       "IndexOptionsConflict",
	86:       "IndexKeySpecsConflict",
	87:       "CannotSplit",
	89:       "NetworkTimeout",
	90:       "CallbackCanceled",
	91:       "ShutdownInProgress",
	92:       "SecondaryAheadOfPrimary",
	93:       "InvalidReplicaSetConfig",
	94:       "NotYetInitialized",
	95:       "NotSecondary",
	96:       "OperationFailed",
	97:       "NoProjectionFound",
	98:       "DBPathInUse",
	100:      "UnsatisfiableWriteConcern",
	101:      "OutdatedClient",
	102:      "IncompatibleAuditMetadata",
	103:      "NewReplicaSetConfigurationIncompatible",
	104:      "NodeNotElectable",
	105:      "IncompatibleShardingMetadata",
	106:      "DistributedClockSkewed",
	107:      "LockFailed",
	108:      "InconsistentReplicaSetNames",
	109:      "ConfigurationInProgress",
	110:      "CannotInitializeNodeWithData",
	111:      "NotExactValueField",
	112:      "WriteConflict",
	113:      "InitialSyncFailure",
	114:      "InitialSyncOplogSourceMissing",
	115:      "CommandNotSupported",
	116:      "DocTooLargeForCapped",
	117:      "ConflictingOperationInProgress",
	118:      "NamespaceNotSharded",
	119:      "InvalidSyncSource",
	120:      "OplogStartMissing",
	121:      "DocumentValidationFailure",
	123:      "NotAReplicaSet",
	124:      "IncompatibleElectionProtocol",
	125:      "CommandFailed",
	126:      "RPCProtocolNegotiationFailed",
	127:      "UnrecoverableRollbackError",
	128:      "LockNotFound",
	129:      "LockStateChangeFailed",
	130:      "SymbolNotFound",
	133:      "FailedToSatisfyReadPreference",
	134:      "ReadConcernMajorityNotAvailableYet",
	135:      "StaleTerm",
	136:      "CappedPositionLost",
	137:      "IncompatibleShardingConfigVersion",
	138:      "RemoteOplogStale",
	139:      "JSInterpreterFailure",
	140:      "InvalidSSLConfiguration",
	141:      "SSLHandshakeFailed",
	142:      "JSUncatchableError",
	143:      "CursorInUse",
	144:      "IncompatibleCatalogManager",
	145:      "PooledConnectionsDropped",
	146:      "ExceededMemoryLimit",
	147:      "ZLibError",
	148:      "ReadConcernMajorityNotEnabled",
	149:      "NoConfigPrimary",
	150:      "StaleEpoch",
	151:      "OperationCannotBeBatched",
	152:      "OplogOutOfOrder",
	153:      "ChunkTooBig",
	154:      "InconsistentShardIdentity",
	155:      "CannotApplyOplogWhilePrimary",
	157:      "CanRepairToDowngrade",
	158:      "MustUpgrade",
	159:      "DurationOverflow",
	160:      "MaxStalenessOutOfRange",
	161:      "IncompatibleCollationVersion",
	162:      "CollectionIsEmpty",
	163:      "ZoneStillInUse",
	164:      "InitialSyncActive",
	165:      "ViewDepthLimitExceeded",
	166:      "CommandNotSupportedOnView",
	167:      "OptionNotSupportedOnView",
	168:      "InvalidPipelineOperator",
	169:      "CommandOnShardedViewNotSupportedOnMongod",
	170:      "TooManyMatchingDocuments",
	171:      "CannotIndexParallelArrays",
	172:      "TransportSessionClosed",
	173:      "TransportSessionNotFound",
	174:      "TransportSessionUnknown",
	175:      "QueryPlanKilled",
	176:      "FileOpenFailed",
	177:      "ZoneNotFound",
	178:      "RangeOverlapConflict",
	179:      "WindowsPdhError",
	180:      "BadPerfCounterPath",
	181:      "AmbiguousIndexKeyPattern",
	182:      "InvalidViewDefinition",
	183:      "ClientMetadataMissingField",
	184:      "ClientMetadataAppNameTooLarge",
	185:      "ClientMetadataDocumentTooLarge",
	186:      "ClientMetadataCannotBeMutated",
	187:      "LinearizableReadConcernError",
	188:      "IncompatibleServerVersion",
	189:      "PrimarySteppedDown",
	190:      "MasterSlaveConnectionFailure",
	192:      "FailPointEnabled",
	194:      "BalancerInterrupted",
	195:      "ViewPipelineMaxSizeExceeded",
	197:      "InvalidIndexSpecificationOption",
	199:      "ReplicaSetMonitorRemoved",
	200:      "ChunkRangeCleanupPending",
	201:      "CannotBuildIndexKeys",
	202:      "NetworkInterfaceExceededTimeLimit",
	203:      "ShardingStateNotInitialized",
	204:      "TimeProofMismatch",
	205:      "ClusterTimeFailsRateLimiter",
	206:      "NoSuchSession",
	207:      "InvalidUUID",
	208:      "TooManyLocks",
	209:      "StaleClusterTime",
	210:      "CannotVerifyAndSignLogicalTime",
	211:      "KeyNotFound",
	212:      "IncompatibleRollbackAlgorithm",
	213:      "DuplicateSession",
	214:      "AuthenticationRestrictionUnmet",
	215:      "DatabaseDropPending",
	216:      "ElectionInProgress",
	217:      "IncompleteTransactionHistory",
	218:      "UpdateOperationFailed",
	219:      "FTDCPathNotSet",
	220:      "FTDCPathAlreadySet",
	221:      "IndexModified",
	222:      "CloseChangeStream",
	223:      "IllegalOpMsgFlag",
	224:      "QueryFeatureNotAllowed",
	225:      "TransactionTooOld",
	226:      "AtomicityFailure",
	227:      "CannotImplicitlyCreateCollection",
	228:      "SessionTransferIncomplete",
	229:      "MustDowngrade",
	230:      "DNSHostNotFound",
	231:      "DNSProtocolError",
	232:      "MaxSubPipelineDepthExceeded",
	233:      "TooManyDocumentSequences",
	234:      "RetryChangeStream",
	235:      "InternalErrorNotSupported",
	236:      "ForTestingErrorExtraInfo",
	237:      "CursorKilled",
	238:      "NotImplemented",
	239:      "SnapshotTooOld",
	240:      "DNSRecordTypeMismatch",
	241:      "ConversionFailure",
	242:      "CannotCreateCollection",
	243:      "IncompatibleWithUpgradedServer",
	245:      "BrokenPromise",
	246:      "SnapshotUnavailable",
	247:      "ProducerConsumerQueueBatchTooLarge",
	248:      "ProducerConsumerQueueEndClosed",
	249:      "StaleDbVersion",
	250:      "StaleChunkHistory",
	251:      "NoSuchTransaction",
	252:      "ReentrancyNotAllowed",
	256:      "TransactionCommitted",
	257:      "TransactionTooLarge",
	258:      "UnknownFeatureCompatibilityVersion",
	259:      "KeyedExecutorRetry",
	260:      "InvalidResumeToken",
	261:      "TooManyLogicalSessions",
	262:      "ExceededTimeLimit",
	263:      "OperationNotSupportedInTransaction",
	264:      "TooManyFilesOpen",
	265:      "OrphanedRangeCleanUpFailed",
	266:      "FailPointSetFailed",
	267:      "PreparedTransactionInProgress",
	268:      "CannotBackup",
	269:      "DataModifiedByRepair",
	270:      "RepairedReplicaSetNode",
	271:      "JSInterpreterFailureWithStack",
	272:      "MigrationConflict",
	273:      "ProducerConsumerQueueProducerQueueDepthExceeded",
	274:      "ProducerConsumerQueueConsumed",
	275:      "ExchangePassthrough",
	276:      "IndexBuildAborted",
	277:      "AlarmAlreadyFulfilled",
	278:      "UnsatisfiableCommitQuorum",
	279:      "ClientDisconnect",
	280:      "ChangeStreamFatalError",
	281:      "TransactionCoordinatorSteppingDown",
	282:      "TransactionCoordinatorReachedAbortDecision",
	283:      "WouldChangeOwningShard",
	284:      "ForTestingErrorExtraInfoWithExtraInfoInNamespace",
	285:      "IndexBuildAlreadyInProgress",
	286:      "ChangeStreamHistoryLost",
	287:      "TransactionCoordinatorDeadlineTaskCanceled",
	288:      "ChecksumMismatch",
	289:      "WaitForMajorityServiceEarlierOpTimeAvailable",
	290:      "TransactionExceededLifetimeLimitSeconds",
	291:      "NoQueryExecutionPlans",
	292:      "QueryExceededMemoryLimitNoDiskUseAllowed",
	293:      "InvalidSeedList",
	294:      "InvalidTopologyType",
	295:      "InvalidHeartBeatFrequency",
	296:      "TopologySetNameRequired",
	297:      "HierarchicalAcquisitionLevelViolation",
	298:      "InvalidServerType",
	299:      "OCSPCertificateStatusRevoked",
	300:      "RangeDeletionAbandonedBecauseCollectionWithUUIDDoesNotExist",
	301:      "DataCorruptionDetected",
	302:      "OCSPCertificateStatusUnknown",
	303:      "SplitHorizonChange",
	306:      "ReadThroughCacheLookupCanceled",
	307:      "RangeDeletionAbandonedBecauseTaskDocumentDoesNotExist",
	308:      "CurrentConfigNotCommittedYet",
	309:      "ExhaustCommandFinished",
	310:      "PeriodicJobIsStopped",
	311:      "TransactionCoordinatorCanceled",
	312:      "OperationIsKilledAndDelisted",
	313:      "ResumableRangeDeleterDisabled",
	314:      "ObjectIsBusy",
	315:      "TooStaleToSyncFromSource",
	316:      "QueryTrialRunCompleted",
	317:      "ConnectionPoolExpired",
	318:      "ForTestingOptionalErrorExtraInfo",
	319:      "MovePrimaryInProgress",
	322:      "APIVersionError",
	323:      "APIStrictError",
	324:      "APIDeprecationError",
	326:      "OplogQueryMinTsMissing",
	330:      "SkipCommandExecution",
	331:      "FailedToRunWithReplyBuilder",
	332:      "CannotDowngrade",
	333:      "ServiceExecutorInShutdown",
	334:      "MechanismUnavailable",
	336:      "TimeseriesBucketCleared",
	337:      "AuthenticationAbandoned",
	338:      "ReshardCollectionInProgress",
	339:      "NoSuchReshardCollection",
	340:      "ReshardCollectionCommitted",
	341:      "ReshardCollectionAborted",
	342:      "ReshardingCriticalSectionTimeout",
	343:      "ShardCannotRefreshDueToLocksHeld",
	344:      "AuditingNotEnabled",
	345:      "RuntimeAuditConfigurationNotEnabled",
	346:      "ChangeStreamInvalidated",
	347:      "APIMismatchError",
	348:      "ChangeStreamTopologyChange",
	349:      "KeyPatternShorterThanBound",
	350:      "ReshardCollectionTruncatedError",
	351:      "ChangeStreamStartAfterInvalidate",
	352:      "UnsupportedOpQueryCommand",
	354:      "LoadBalancerSupportMismatch",
	355:      "InterruptedDueToStorageChange",
	356:      "TxnRetryCounterTooOld",
	357:      "InvalidBSONType",
	358:      "InternalTransactionNotSupported",
	359:      "CannotConvertIndexToUnique",
	360:      "PlacementVersionRefreshCanceled",
	361:      "CollectionUUIDMismatch",
	362:      "FutureAlreadyRetrieved",
	363:      "RetryableTransactionInProgress",
	365:      "TemporarilyUnavailable",
	366:      "WouldChangeOwningShardDeletedNoDocument",
	367:      "FLECompactionPlaceholder",
	369:      "FLETransactionAbort",
	370:      "CannotDropShardKeyIndex",
	371:      "UserWritesBlocked",
	372:      "CloseConnectionForShutdownCommand",
	373:      "InternalTransactionsExhaustiveFindHasMore",
	374:      "TransactionAPIMustRetryTransaction",
	375:      "TransactionAPIMustRetryCommit",
	376:      "ChangeStreamNotEnabled",
	377:      "FLEMaxTagLimitExceeded",
	378:      "NonConformantBSON",
	379:      "DatabaseMetadataRefreshCanceled",
	380:      "RequestAlreadyFulfilled",
	381:      "ReshardingCoordinatorServiceConflictingOperationInProgress",
	382:      "RemoteCommandExecutionError",
	383:      "CollectionIsEmptyLocally",
	384:      "ConnectionError",
	385:      "ConflictingServerlessOperation",
	386:      "DuplicateKeyId",
	387:      "EncounteredFLEPayloadWhileApplyingHmac",
	388:      "TransactionTooLargeForCache",
	389:      "LibmongocryptError",
	390:      "InvalidSignature",
	391:      "ReauthenticationRequired",
	392:      "InvalidJWT",
	393:      "InvalidTenantId",
	395:      "TruncatedSerialization",
	396:      "IndexInformationTooLarge",
	398:      "StreamTerminated",
	400:      "CannotUpgrade",
	401:      "ResumeTenantChangeStream",
	402:      "ResourceExhausted",
	403:      "UnsupportedShardingEventNotification",
	404:      "LDAPRoleAcquisitionError",
	405:      "CannotCreateChunkDistribution",
	406:      "MigrationBlockingOperationCoordinatorCleaningUp",
	407:      "PooledConnectionAcquisitionExceededTimeLimit",
	408:      "CannotInsertTimeseriesBucketsWithMixedSchema",
	409:      "TimeseriesBucketCompressionFailed",
	410:      "TimeseriesBucketFrozen",
	411:      "QueryRejectedBySettings",
	412:      "UpdatesStillPending",
	413:      "TransactionParticipantFailedUnyield",
	414:      "AddOrRemoveShardInProgress",
	415:      "StreamProcessorDoesNotExist",
	416:      "StreamProcessorAlreadyExists",
	417:      "StreamProcessorWorkerShuttingDown",
	418:      "StreamProcessorWorkerOutOfMemory",
	419:      "StreamProcessorKafkaConnectionError",
	420:      "StreamProcessorInvalidOptions",
	421:      "StreamProcessorAtlasConnectionError",
	422:      "StreamProcessorAtlasUnauthorizedError",
	423:      "StreamProcessorSourceDocTooLarge",
	424:      "StreamProcessorTooManyOutputTargets",
	425:      "StreamProcessorCannotResumeFromSource",
	426:      "IndexIsEmpty",
	427:      "DbCheckSecondaryBatchTimeout",
	428:      "DbCheckAttemptOnClusteredCollectionIdIndex",
	429:      "DbCheckInconsistentHash",
	430:      "IndexKeyOrderViolation",
	431:      "ChunkMetadataInconsistency",
	432:      "OfflineValidationFailedToComplete",
	433:      "AdmissionQueueOverflow",
	434:      "NoDistinctScansForDistinctEligibleQuery",
	435:      "QueryStatsFailedToRecord",
	436:      "StreamProcessorHTTPSConnectionError",
	440:      "StreamProcessorExternalFunctionConnectionError",
	442:      "RetryMultiPlanning",
	443:      "StreamProcessorS3ConnectionError",
	444:      "StreamProcessorS3Error",
	445:      "DatabaseMetadataRefreshCanceledDueToFCVTransition",
	446:      "ClusterUMCErrorWithWriteConcernError",
	447:      "ObjectAlreadyExists",
	448:      "StreamProcessorInvalidNamespace",
	449:      "RateLimitExceeded",
	450:      "PooledConnectionAcquisitionRejected",
	451:      "StreamProcessorS3TokenExpired",
	452:      "ReleaseMemoryShardError",
	453:      "InterruptedDueToReshardingCriticalSection",
	454:      "ReplayClientConfigurationError",
	455:      "ReplayClientNotConnected",
	456:      "ReplayClientFailedToProcessBSON",
	457:      "ReplayClientInternalError",
	458:      "ReplayClientSessionSchedulerError",
	459:      "ReplayClientSessionSimulationError",
	460:      "StreamProcessorKinesisConnectionError",
	461:      "StreamProcessorKinesisError",
	462:      "IngressRequestRateLimitExceeded",
	9001:     "SocketException",
	10003:    "CannotGrowDocumentInCappedNamespace",
	10058:    "LegacyNotPrimary",
	10107:    "NotWritablePrimary",
	10334:    "BSONObjectTooLarge",
	11000:    "DuplicateKey",
	11600:    "InterruptedAtShutdown",
	11601:    "Interrupted",
	11602:    "InterruptedDueToReplStateChange",
	12586:    "BackgroundOperationInProgressForDatabase",
	12587:    "BackgroundOperationInProgressForNamespace",
	13113:    "MergeStageNoMatchingDocument",
	13297:    "DatabaseDifferCase",
	13388:    "StaleConfig",
	13435:    "NotPrimaryNoSecondaryOk",
	13436:    "NotPrimaryOrSecondary",
	14031:    "OutOfDiskSpace",
	28769:    "NamespaceCannotBeSharded",
	31082:    "SearchNotEnabled",
	40413:    "IDLDuplicateField",
	40414:    "IDLFailedToParse",
	40415:    "IDLUnknownField",
	46841:    "ClientMarkedKilled",
	50768:    "NotARetryableWriteCommand",
	50915:    "BackupCursorOpenConflictWithCheckpoint",
	56846:    "ConfigServerUnreachable",
	57986:    "RetryableInternalTransactionNotSupported",
	91331:    "RetriableRemoteCommandFailure",
	640570:   "IllegalChangeToExpectedShardVersion",
	640571:   "IllegalChangeToExpectedDatabaseVersion",
	1003141:  "RemoveShardDrainingInProgress",
	4662500:  "IDLUnknownFieldPossibleMongocryptd",
	4938500:  "IndexNotFoundCachedPlan",
	9737301:  "UnsupportedCbrNode",
	9751901:  "HistogramCEFailure",
	9751902:  "SamplingCEFailure",
	9751903:  "CEFailure",
	10045600: "InterruptedDueToFCVChange",
	10171600: "ReadThroughCacheTimeMonotonicityViolation",
}

// Error code categories of error_codes.yml that decide mongod's error
// labels.
var (
	retriableCodes         = []int32{6, 7, 89, 91, 134, 189, 262, 317, 358, 384, 402, 406, 407, 412, 453, 462, 9001, 10107, 11600, 11602, 13435, 13436, 50915, 91331, 10045600}
	shutdownCodes          = []int32{91, 333, 11600}
	snapshotCodes          = []int32{239, 246, 250, 272}
	needRetargettingCodes  = []int32{150, 13388}
	writeConcernErrorCodes = []int32{64, 75, 79, 100}
)

// Server error codes the front answers with beyond those of msg.go.
const (
	codeInvalidOptions            = 72
	codeUnknownReplWriteConcern   = 79
	codeUnsatisfiableWriteConcern = 100
	codeLockTimeout               = 24
	codeMaxTimeMSExpired          = 50
	codeNamespaceExists           = 48
	codeSnapshotTooOld            = 239
	codeSnapshotUnavailable       = 246
	codePreparedTxnInProgress     = 267
	codeIncompleteTxnHistory      = 217
	codeDuplicateKey              = 11000
)

// labelRetryableWrite is the label mongod (4.4 and later) gives an error
// after which a driver may retry the write.
const labelRetryableWrite = "RetryableWriteError"

// errorLabels returns the labels mongod gives the reply to cmd that
// failed with code (0: the command succeeded) and carries a
// writeConcernError of wcCode (0: none), as its ErrorLabelBuilder does:
//   - RetryableWriteError on a retryable write (txnNumber without
//     autocommit) or a commit or abort, when either code is in the
//     RetriableError category or code is a shutdown;
//   - TransientTransactionError on a command of a transaction (txnNumber
//     with autocommit: false) whose code is a write conflict, a lock
//     timeout, a prepared transaction in progress, a snapshot or
//     retargeting error, or (except on a commit or abort) any retriable
//     error, and NoSuchTransaction unless a commit or abort also has a
//     writeConcernError;
//   - UnknownTransactionCommitResult on commitTransaction when the error is
//     retryable, the write concern failed (other than being
//     unsatisfiable), or the time limit expired.
func errorLabels(cmd *command, code, wcCode int32) []string {
	if code == 0 && wcCode == 0 {
		return nil
	}
	_, hasNumber := cmd.lookup("txnNumber").AsInt64OK()
	if !hasNumber {
		return nil
	}
	inTxn := cmd.lookup("autocommit").Type != 0
	commitOrAbort := inTxn && (cmd.name == "commitTransaction" || cmd.name == "abortTransaction")
	var labels []string
	retryable := (!inTxn || commitOrAbort) &&
		(slices.Contains(retriableCodes, code) || slices.Contains(retriableCodes, wcCode) || slices.Contains(shutdownCodes, code))
	if retryable {
		labels = append(labels, labelRetryableWrite)
	}
	if inTxn && code != 0 && isTransient(code, wcCode != 0, commitOrAbort) {
		labels = append(labels, labelTransient)
	}
	if commitOrAbort && cmd.name == "commitTransaction" {
		wcFailed := wcCode != 0 && wcCode != codeUnsatisfiableWriteConcern && wcCode != codeUnknownReplWriteConcern
		if retryable || wcFailed || code == codeMaxTimeMSExpired {
			labels = append(labels, labelUnknownCommit)
		}
	}
	return labels
}

// isTransient reports whether an error of code in a transaction leaves no
// trace, so that the whole transaction may run again.
func isTransient(code int32, hasWriteConcernError, commitOrAbort bool) bool {
	switch {
	case code == codeWriteConflict, code == codeLockTimeout, code == codePreparedTxnInProgress,
		slices.Contains(snapshotCodes, code), slices.Contains(needRetargettingCodes, code):
		return true
	case commitOrAbort:
		return code == codeNoSuchTransaction && !hasWriteConcernError
	}
	return slices.Contains(retriableCodes, code) || code == codeNoSuchTransaction
}

// withCodeNames returns rep with the codeName of its code, and of its
// writeConcernError's code, where they lack one.
func withCodeNames(rep bsoncore.Document) bsoncore.Document {
	named := func(d bsoncore.Document) (string, bool) {
		code, ok := d.Lookup("code").AsInt32OK()
		if !ok {
			return "", false
		}
		if _, err := d.LookupErr("codeName"); err == nil {
			return "", false
		}
		name, ok := codeNames[code]
		return name, ok
	}
	if !replyOK(rep) {
		if name, ok := named(rep); ok {
			rep = editDoc(rep, nil, bson.D{{Key: "codeName", Value: name}})
		}
	}
	if wce, ok := rep.Lookup("writeConcernError").DocumentOK(); ok {
		if name, ok := named(wce); ok {
			wce = editDoc(wce, nil, bson.D{{Key: "codeName", Value: name}})
			rep = editDoc(rep, nil, bson.D{{Key: "writeConcernError", Value: bson.Raw(wce)}})
		}
	}
	return rep
}

// unsatisfiable returns the writeConcernError mongod, the primary of a
// one-member set, gives a write whose write concern cannot be satisfied:
// UnsatisfiableWriteConcern (100) for a w above 1 (the set has one
// data-bearing member), UnknownReplWriteConcern (79) for a w naming a
// mode other than majority (the set has no tags). It returns nil for any
// other command or write concern. The write itself is done, as on mongod.
func unsatisfiable(cmd *command) bson.D {
	if !writeCommands[cmd.name] && cmd.name != "commitTransaction" && cmd.name != "abortTransaction" {
		return nil
	}
	wc, ok := cmd.lookup("writeConcern").DocumentOK()
	if !ok {
		return nil
	}
	w := wc.Lookup("w")
	var code int32
	var msg string
	if n, ok := w.AsInt64OK(); ok && n > 1 {
		code, msg = codeUnsatisfiableWriteConcern, "Not enough data-bearing nodes"
	} else if s, ok := w.StringValueOK(); ok && s != "majority" {
		code, msg = codeUnknownReplWriteConcern, "No write concern mode named '"+s+"' found in replica set configuration"
	}
	if code == 0 {
		return nil
	}
	given := bson.D{{Key: "w", Value: rawValue(w)}}
	if wt, err := wc.LookupErr("wtimeout"); err == nil {
		given = append(given, bson.E{Key: "wtimeout", Value: rawValue(wt)})
	} else {
		given = append(given, bson.E{Key: "wtimeout", Value: int32(0)})
	}
	given = append(given, bson.E{Key: "provenance", Value: "clientSupplied"})
	return bson.D{
		{Key: "code", Value: code},
		{Key: "codeName", Value: codeNames[code]},
		{Key: "errmsg", Value: msg},
		{Key: "errInfo", Value: bson.D{{Key: "writeConcern", Value: given}}},
	}
}
